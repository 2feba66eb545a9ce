// Command testcluster is a real Kubernetes control plane for ecr-operator's tests, built from the
// Kubernetes Go modules: kube-apiserver, an embedded etcd, kube-controller-manager (limited to the
// garbage-collector, namespace, serviceaccount, serviceaccount-token and clusterrole-aggregation
// controllers) and kubectl, in one multi-call binary. Built with `-tags node` (testcluster-node)
// it also has kube-scheduler, the kubelet and a node supervisor, and `up --with-node` runs one
// Node on containerd (node.go).
//
// Usage:
//
//	testcluster up --dir DIR [--with-kcm] [--exit-on-stdin-eof]
//	testcluster-node up --dir DIR --with-node --node-tools TOOLS [--exit-on-stdin-eof]
//	testcluster kube-apiserver|kube-controller-manager|kubectl|etcd ARGS...
//	testcluster-node kubelet|kube-scheduler|node ARGS...
//
// (or call the binary through a symlink named after the component).
//
// `up` writes DIR/pki, DIR/admin.kubeconfig and DIR/*.log, starts everything on free 127.0.0.1
// ports, and writes DIR/ready (holding the server URL) once the apiserver answers /readyz and,
// with --with-kcm, the serviceaccount controller has created default/default (and, with
// --with-node, the Node is Ready). It runs until SIGINT/SIGTERM, or until its standard input
// closes with --exit-on-stdin-eof (so a test harness that dies, even by SIGKILL, leaves no stray
// processes).
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	_ "time/tzdata" // upstream mains import it (CronJob timeZone validation)

	"go.etcd.io/etcd/server/v3/embed"
	"go.etcd.io/etcd/server/v3/etcdmain"
	_ "k8s.io/client-go/plugin/pkg/client/auth" // kubectl's main imports it
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	kubectlcmd "k8s.io/kubectl/pkg/cmd"
	kubectlutil "k8s.io/kubectl/pkg/cmd/util"
	apiserverapp "k8s.io/kubernetes/cmd/kube-apiserver/app"
	kcmapp "k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

func main() {
	name, args := filepath.Base(os.Args[0]), os.Args[1:]
	if name == "testcluster" || name == "testcluster-node" {
		if len(args) == 0 {
			fmt.Fprintln(os.Stderr, "usage: testcluster up|kube-apiserver|kube-controller-manager|kubectl|etcd ...")
			os.Exit(2)
		}
		name, args = args[0], args[1:]
	}
	switch name {
	case "up":
		os.Exit(up(args))
	case "kube-apiserver": // one per process: the constructor installs the signal handler
		cmd := apiserverapp.NewAPIServerCommand()
		cmd.SetArgs(args)
		os.Exit(cli.Run(cmd))
	case "kube-controller-manager":
		cmd := kcmapp.NewControllerManagerCommand()
		cmd.SetArgs(args)
		os.Exit(cli.Run(cmd))
	case "kubectl":
		os.Args = append([]string{"kubectl"}, args...) // the plugin handler and cobra read os.Args
		cmd := kubectlcmd.NewDefaultKubectlCommand()
		if err := cli.RunNoErrOutput(cmd); err != nil {
			kubectlutil.CheckErr(err)
		}
	case "etcd":
		etcdmain.Main(append([]string{"etcd"}, args...))
	default:
		if f, ok := nodeCommands[name]; ok {
			os.Exit(f(args))
		}
		fmt.Fprintf(os.Stderr, "unknown subcommand %q\n", name)
		os.Exit(2)
	}
}

// nodeCommands holds the node's components (kubelet, kube-scheduler, the node supervisor); only
// the binary built with `-tags node` (testcluster-node) has them.
var nodeCommands = map[string]func(args []string) int{}

func up(argv []string) int {
	fs := flag.NewFlagSet("up", flag.ExitOnError) // never the global flag set (klog and cobra share it)
	dir := fs.String("dir", "", "state directory (required)")
	withKCM := fs.Bool("with-kcm", false, "run kube-controller-manager (garbage collector, namespace and service-account controllers)")
	withNode := fs.Bool("with-node", false, "also run kube-scheduler, containerd and the kubelet: one Node (implies --with-kcm; testcluster-node only)")
	nodeTools := fs.String("node-tools", "", "with --with-node: the directory tests/node/install.sh prints")
	stdinEOF := fs.Bool("exit-on-stdin-eof", false, "shut down when standard input closes")
	_ = fs.Parse(argv)
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "up: --dir is required")
		return 2
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	*dir = abs
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if *stdinEOF {
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			stop()
		}()
	}

	o := options{withKCM: *withKCM || *withNode, withNode: *withNode, nodeTools: *nodeTools}
	if o.withNode && startNode == nil {
		fmt.Fprintln(os.Stderr, "up: --with-node needs testcluster-node (tests/testcluster/build.sh --node)")
		return 2
	}
	if o.withNode && o.nodeTools == "" {
		fmt.Fprintln(os.Stderr, "up: --with-node needs --node-tools (the directory tests/node/install.sh prints)")
		return 2
	}
	if err := run(ctx, *dir, o); err != nil {
		fmt.Fprintln(os.Stderr, "testcluster:", err)
		return 1
	}
	return 0
}

// options of `up`.
type options struct {
	withKCM, withNode bool
	nodeTools         string
}

// startNode starts the node's components (kube-scheduler, containerd, kubelet) and waits until
// the Node is Ready; it returns their processes and lines for the ready file. Set by node.go,
// which only the testcluster-node binary (`-tags node`) has.
var startNode func(ctx context.Context, dir, tools, server string, apiPort int, p *PKI) ([]*exec.Cmd, string, error)

func run(ctx context.Context, dir string, o options) error {
	pki, err := writePKI(filepath.Join(dir, "pki"))
	if err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	ports := freePorts(3)
	etcdPort, peerPort, apiPort := ports[0], ports[1], ports[2]

	e, err := startEtcd(filepath.Join(dir, "etcd"), etcdPort, peerPort)
	if err != nil {
		return fmt.Errorf("etcd: %w", err)
	}
	defer e.Close()

	var children []*exec.Cmd
	defer func() {
		for i := len(children) - 1; i >= 0; i-- {
			terminate(children[i])
		}
	}()

	api, err := child(dir, "kube-apiserver", nil, apiserverArgs(dir, etcdPort, apiPort, o)...)
	if err != nil {
		return err
	}
	children = append(children, api)
	server := "https://127.0.0.1:" + strconv.Itoa(apiPort)
	kubeconfig := filepath.Join(dir, "admin.kubeconfig")
	if err := writeKubeconfig(kubeconfig, server, pki); err != nil {
		return err
	}
	if err := waitReady(ctx, server+"/readyz", pki, 120*time.Second); err != nil {
		return fmt.Errorf("kube-apiserver: %w (see %s)", err, filepath.Join(dir, "kube-apiserver.log"))
	}
	if o.withKCM {
		kcm, err := child(dir, "kube-controller-manager", nil, kcmArgs(dir, kubeconfig, o.withNode)...)
		if err != nil {
			return err
		}
		children = append(children, kcm)
		// The serviceaccount controller creates default/default once it runs.
		if err := waitReady(ctx, server+"/api/v1/namespaces/default/serviceaccounts/default", pki, 120*time.Second); err != nil {
			return fmt.Errorf("kube-controller-manager: %w (see %s)", err, filepath.Join(dir, "kube-controller-manager.log"))
		}
	}
	env := fmt.Sprintf("server=%s\nkubeconfig=%s\netcd=http://127.0.0.1:%d\n", server, kubeconfig, etcdPort)
	if o.withNode {
		started, info, err := startNode(ctx, dir, o.nodeTools, server, apiPort, pki)
		children = append(children, started...)
		if err != nil {
			return err
		}
		env += info
	}
	if err := os.WriteFile(filepath.Join(dir, "ready"), []byte(env), 0o644); err != nil {
		return err
	}
	fmt.Println("READY", server)

	// SIGUSR1 restarts kube-apiserver on the same port with the same certificates while etcd keeps
	// running with its data: the fault tests use it ("the API server restarted mid-create").
	restart := make(chan os.Signal, 1)
	signal.Notify(restart, syscall.SIGUSR1)
	defer signal.Stop(restart)
	type exit struct {
		c   *exec.Cmd
		err error
	}
	exited := make(chan exit, 2*len(children)+4)
	wait := func(c *exec.Cmd) { go func() { exited <- exit{c, c.Wait()} }() }
	for _, c := range children {
		wait(c)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case x := <-exited:
			return fmt.Errorf("%s exited: %v", filepath.Base(x.c.Args[1]), x.err)
		case err := <-e.Err():
			return fmt.Errorf("etcd: %w", err)
		case <-restart:
			old := children[0]
			_ = old.Process.Signal(syscall.SIGTERM)
			deadline := time.After(20 * time.Second)
		waitOld:
			for {
				select {
				case x := <-exited:
					if x.c == old {
						break waitOld
					}
					return fmt.Errorf("%s exited: %v", filepath.Base(x.c.Args[1]), x.err)
				case <-deadline:
					_ = old.Process.Kill()
				}
			}
			api, err := child(dir, "kube-apiserver", nil, apiserverArgs(dir, etcdPort, apiPort, o)...)
			if err != nil {
				return err
			}
			children[0] = api
			wait(api)
			if err := waitReady(ctx, server+"/readyz", pki, 120*time.Second); err != nil {
				return fmt.Errorf("kube-apiserver after restart: %w", err)
			}
			fmt.Println("RESTARTED", server)
		}
	}
}

func apiserverArgs(dir string, etcdPort, apiPort int, o options) []string {
	p := filepath.Join(dir, "pki")
	args := []string{
		"--etcd-servers=http://127.0.0.1:" + strconv.Itoa(etcdPort),
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(apiPort),
		"--cert-dir=" + filepath.Join(dir, "apiserver-certs"),
		"--tls-cert-file=" + filepath.Join(p, "apiserver.crt"),
		"--tls-private-key-file=" + filepath.Join(p, "apiserver.key"),
		"--client-ca-file=" + filepath.Join(p, "ca.crt"),
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + filepath.Join(p, "sa.key"),
		"--service-account-signing-key-file=" + filepath.Join(p, "sa.key"),
		"--service-cluster-ip-range=10.0.0.0/24",
		"--allow-privileged=true",
		"--endpoint-reconciler-type=none",
		"--profiling=false",
		"--v=0",
	}
	if !o.withKCM {
		// Without the serviceaccount controller no default ServiceAccount exists.
		args = append(args, "--disable-admission-plugins=ServiceAccount")
	}
	if o.withNode {
		// The kubelet authenticates as system:node:localhost and is authorized as a node is; the
		// API server reaches it (logs, exec) by its Hostname address, localhost.
		args = append(args,
			"--authorization-mode=Node,RBAC",
			"--enable-admission-plugins=NodeRestriction",
			"--kubelet-preferred-address-types=Hostname",
			"--kubelet-client-certificate="+filepath.Join(p, "admin.crt"),
			"--kubelet-client-key="+filepath.Join(p, "admin.key"))
	} else {
		args = append(args, "--authorization-mode=RBAC")
	}
	return args
}

func kcmArgs(dir, kubeconfig string, withNode bool) []string {
	p := filepath.Join(dir, "pki")
	controllers := "garbage-collector-controller,namespace-controller,serviceaccount-controller," +
		"serviceaccount-token-controller,clusterrole-aggregation-controller"
	if withNode {
		// Deployments make Pods; the node lifecycle controller lifts the not-ready taint; Pods'
		// token volumes need the kube-root-ca.crt ConfigMap in their namespace; the disruption
		// controller keeps PodDisruptionBudgets' status, which the Eviction API reads.
		controllers += ",deployment-controller,replicaset-controller,node-lifecycle-controller," +
			"root-ca-certificate-publisher-controller,disruption-controller"
	}
	return []string{
		"--kubeconfig=" + kubeconfig,
		"--controllers=" + controllers,
		"--service-account-private-key-file=" + filepath.Join(p, "sa.key"),
		"--root-ca-file=" + filepath.Join(p, "ca.crt"),
		"--use-service-account-credentials=false",
		"--leader-elect=false",
		"--secure-port=0",
		"--concurrent-gc-syncs=5",
		"--v=0",
	}
}

// child starts this same binary as NAME in its own process, logging to DIR/NAME.log; it gets
// SIGTERM if the supervisor dies. attr, if given, adds to the process attributes (namespaces).
func child(dir, name string, attr *syscall.SysProcAttr, args ...string) (*exec.Cmd, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	// Appended to, so a restarted component's log follows the earlier one.
	log, err := os.OpenFile(filepath.Join(dir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, append([]string{name}, args...)...)
	cmd.Stdout, cmd.Stderr = log, log
	if attr == nil {
		attr = &syscall.SysProcAttr{}
	}
	attr.Pdeathsig = syscall.SIGTERM
	cmd.SysProcAttr = attr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	return cmd, nil
}

func terminate(c *exec.Cmd) {
	if c.Process == nil || c.ProcessState != nil {
		return
	}
	_ = c.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _, _ = c.Process.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(18 * time.Second): // the node's clean-up takes a few seconds
		_ = c.Process.Kill()
	}
}

func startEtcd(dir string, clientPort, peerPort int) (*embed.Etcd, error) {
	cfg := embed.NewConfig()
	cfg.Name = "testcluster"
	cfg.Dir = dir
	lc := url.URL{Scheme: "http", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(clientPort))}
	lp := url.URL{Scheme: "http", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(peerPort))}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{lc}, []url.URL{lc}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{lp}, []url.URL{lp}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.LogLevel = "warn"
	cfg.LogOutputs = []string{filepath.Join(filepath.Dir(dir), "etcd.log")}
	cfg.UnsafeNoFsync = true // test-only: much faster on slow disks
	cfg.WatchProgressNotifyInterval = 5 * time.Second
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, err
	}
	select {
	case <-e.Server.ReadyNotify():
		return e, nil
	case err := <-e.Err():
		return nil, err
	case <-time.After(60 * time.Second):
		e.Server.Stop()
		return nil, errors.New("etcd did not become ready in 60s")
	}
}

// writeKubeconfigFor writes a kubeconfig naming the client certificate and key files.
func writeKubeconfigFor(path, server string, ca []byte, cert, key string) error {
	c := clientcmdapi.NewConfig()
	c.Clusters["testcluster"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: ca}
	c.AuthInfos["user"] = &clientcmdapi.AuthInfo{ClientCertificate: cert, ClientKey: key}
	c.Contexts["testcluster"] = &clientcmdapi.Context{Cluster: "testcluster", AuthInfo: "user"}
	c.CurrentContext = "testcluster"
	return clientcmd.WriteToFile(*c, path)
}

func writeKubeconfig(path, server string, p *PKI) error {
	c := clientcmdapi.NewConfig()
	c.Clusters["testcluster"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: p.CACert}
	c.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: p.AdminCert, ClientKeyData: p.AdminKey}
	c.Contexts["testcluster"] = &clientcmdapi.Context{Cluster: "testcluster", AuthInfo: "admin", Namespace: "default"}
	c.CurrentContext = "testcluster"
	return clientcmd.WriteToFile(*c, path)
}

// adminHTTP is an HTTP client for the API server with the admin certificate.
func adminHTTP(p *PKI) (*http.Client, error) {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(p.CACert)
	kp, err := tls.X509KeyPair(p.AdminCert, p.AdminKey)
	if err != nil {
		return nil, err
	}
	return &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{kp}}}}, nil
}

func waitReady(ctx context.Context, u string, p *PKI, timeout time.Duration) error {
	hc, err := adminHTTP(p)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	last := "no answer"
	for time.Now().Before(deadline) {
		r, err := hc.Get(u)
		if err == nil {
			_ = r.Body.Close()
			if r.StatusCode == http.StatusOK {
				return nil
			}
			last = r.Status
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	return fmt.Errorf("timed out after %s waiting for %s (last: %s)", timeout, u, strings.TrimSpace(last))
}

// freePorts returns n distinct free loopback ports. All listeners stay open until every port is
// chosen, so the kernel cannot hand the same port out twice; the window between close and reuse
// by our components remains (another process could take a port), which is rare.
func freePorts(n int) []int {
	ports := make([]int, 0, n)
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			panic(err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}
