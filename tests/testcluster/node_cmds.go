//go:build node

package main

import (
	"context"

	"k8s.io/component-base/cli"
	schedulerapp "k8s.io/kubernetes/cmd/kube-scheduler/app"
	kubeletapp "k8s.io/kubernetes/cmd/kubelet/app"
)

func init() {
	nodeCommands["kubelet"] = func(args []string) int {
		cmd := kubeletapp.NewKubeletCommand(context.Background())
		cmd.SetArgs(args)
		return cli.Run(cmd)
	}
	nodeCommands["kube-scheduler"] = func(args []string) int {
		cmd := schedulerapp.NewSchedulerCommand()
		cmd.SetArgs(args)
		return cli.Run(cmd)
	}
}
