//go:build node

package main

// The node of `up --with-node`: kube-scheduler, and a node supervisor (`testcluster node`) that
// runs containerd and the kubelet in a mount namespace of their own, so every mount they make
// (overlay root filesystems, Secret and token volumes, network namespaces) disappears with it.
//
// Pod networking is a Linux bridge (CNI bridge + host-local + loopback plugins) with the node's
// address as its gateway. Every listener stays on 127.0.0.1; three NAT rules on the bridge let Pods
// reach them:
//
//   - the `kubernetes` Service (ClusterIP 10.0.0.1:443) is sent to kube-apiserver on
//     127.0.0.1:<port>, which is what kube-proxy would program if the Service's endpoint could be
//     a loopback address (the API server refuses loopback endpoints, so kube-proxy cannot);
//   - any TCP port of the gateway address is sent to the same port on 127.0.0.1, so a Pod reaches
//     a test server (moto) at http://<gateway>:<port>;
//   - any TCP port of 169.254.170.23, the link-local address where EKS runs its Pod Identity
//     agent on the node's host network, is sent to the same port on 127.0.0.1, so a Pod reaches
//     a local stand-in for the agent at http://169.254.170.23:<port> (the AWS SDKs take plain
//     HTTP credentials endpoints only on loopback and on that address).
//
// route_localnet is set on the bridge only, which lets the kernel deliver those packets to
// loopback. The bridge, the rules and the kubelet's cgroup root are removed when the node stops.

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

const (
	nodeName = "localhost" // the kubelet's Hostname address: kube-apiserver reaches it on 127.0.0.1
	bridge   = "ecrop-node0"
	podCIDR  = "10.213.0.0/24"
	gateway  = "10.213.0.1"
	// kubernetesServiceIP is the first address of --service-cluster-ip-range.
	kubernetesServiceIP = "10.0.0.1"
	// pauseImage is the sandbox image: Debian's catatonit in pause mode (-P), built here.
	pauseImage = "localhost/testcluster/pause:catatonit"
	// natChain holds the NAT rules; PREROUTING jumps to it for packets from the bridge.
	natChain = "ECROP-NODE"
	// nodeLock is held by the running node supervisor: the bridge, its subnet and the NAT chain
	// are fixed, so one node cluster runs per machine at a time.
	nodeLock = "/tmp/ecr-operator-testcluster-node.lock"
)

func init() {
	nodeCommands["node"] = nodeMain
	startNode = startNodeComponents
}

// startNodeComponents starts kube-scheduler and the node supervisor as children of `up`, and
// waits until the Node is Ready.
func startNodeComponents(ctx context.Context, dir, tools, server string, apiPort int, p *PKI) ([]*exec.Cmd, string, error) {
	pki := filepath.Join(dir, "pki")
	sched := filepath.Join(dir, "kube-scheduler.kubeconfig")
	if err := writeKubeconfigFor(sched, server, p.CACert, filepath.Join(pki, "scheduler.crt"), filepath.Join(pki, "scheduler.key")); err != nil {
		return nil, "", err
	}
	kubelet := filepath.Join(dir, "kubelet.kubeconfig")
	if err := writeKubeconfigFor(kubelet, server, p.CACert, filepath.Join(pki, "kubelet.crt"), filepath.Join(pki, "kubelet.key")); err != nil {
		return nil, "", err
	}
	var children []*exec.Cmd
	s, err := child(dir, "kube-scheduler", nil,
		"--kubeconfig="+sched, "--leader-elect=false", "--secure-port=0", "--v=0")
	if err != nil {
		return nil, "", err
	}
	children = append(children, s)
	n, err := child(dir, "node", &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNS},
		"--dir="+dir, "--tools="+tools, "--kubeconfig="+kubelet, "--api-port="+strconv.Itoa(apiPort))
	if err != nil {
		return children, "", err
	}
	children = append(children, n)
	start := time.Now()
	if err := waitNodeReady(ctx, server, p, n, 180*time.Second); err != nil {
		return children, "", fmt.Errorf("node: %w (see %s and %s)", err,
			filepath.Join(dir, "node.log"), filepath.Join(dir, "kubelet.log"))
	}
	fmt.Printf("NODE READY %s after %s\n", nodeName, time.Since(start).Round(time.Millisecond))
	nd := filepath.Join(dir, "node")
	info := fmt.Sprintf("node=%s\nnode_tools=%s\ncontainerd=%s\npod_gateway=%s\npause_image=%s\n",
		nodeName, tools, filepath.Join(nd, "containerd", "containerd.sock"), gateway, pauseImage)
	return children, info, nil
}

// exitedEarly reports whether c's process has exited (a zombie not yet waited for).
func exitedEarly(c *exec.Cmd) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", c.Process.Pid))
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(stat, ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] == 'Z'
}

func waitNodeReady(ctx context.Context, server string, p *PKI, supervisor *exec.Cmd, timeout time.Duration) error {
	hc, err := adminHTTP(p)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	last := "not registered"
	for time.Now().Before(deadline) {
		if exitedEarly(supervisor) {
			return errors.New("the node supervisor exited")
		}
		r, err := hc.Get(server + "/api/v1/nodes/" + nodeName)
		if err == nil {
			var node struct {
				Status struct {
					Conditions []struct{ Type, Status, Reason, Message string }
				}
			}
			body, _ := io.ReadAll(r.Body)
			_ = r.Body.Close()
			if r.StatusCode == http.StatusOK && json.Unmarshal(body, &node) == nil {
				for _, c := range node.Status.Conditions {
					if c.Type == "Ready" {
						if c.Status == "True" {
							return nil
						}
						last = c.Reason + ": " + c.Message
					}
				}
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	return fmt.Errorf("node %s not Ready after %s (last: %s)", nodeName, timeout, last)
}

// nodeMain is the node supervisor: `testcluster node --dir DIR --tools TOOLS --kubeconfig K
// --api-port N`, started by `up` in a new mount namespace.
func nodeMain(argv []string) int {
	fs := flag.NewFlagSet("node", flag.ExitOnError)
	dir := fs.String("dir", "", "the cluster's state directory")
	tools := fs.String("tools", "", "directory of tests/node/install.sh (bin/containerd, bin/runc, bin/cni/...)")
	kubeconfig := fs.String("kubeconfig", "", "the kubelet's kubeconfig")
	apiPort := fs.Int("api-port", 0, "kube-apiserver's port on 127.0.0.1")
	_ = fs.Parse(argv)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	n := &node{dir: *dir, state: filepath.Join(*dir, "node"), tools: *tools, kubeconfig: *kubeconfig, apiPort: *apiPort,
		cgroup: "/" + filepath.Base(*dir)}
	err := n.run(ctx)
	n.cleanup()
	if err != nil {
		fmt.Fprintln(os.Stderr, "node:", err)
		return 1
	}
	return 0
}

type node struct {
	dir, state, tools, kubeconfig string
	apiPort                       int
	cgroup                        string
	containerd, kubelet           *exec.Cmd
	// lock is kept open (and referenced, or a finalizer would close it) for the process's life.
	lock   *os.File
	locked bool // this supervisor owns the bridge, the NAT chain and the cgroups
}

func (n *node) bin(name string) string { return filepath.Join(n.tools, "bin", name) }

func (n *node) run(ctx context.Context) error {
	lock, err := os.OpenFile(nodeLock, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(nodeLock)
		return fmt.Errorf("another node cluster is running on this machine (%s held by %s): one at a time",
			nodeLock, strings.TrimSpace(string(holder)))
	}
	n.lock, n.locked = lock, true // the lock is released when this process exits
	previous, _ := os.ReadFile(nodeLock)
	if _, dir, ok := strings.Cut(strings.TrimSpace(string(previous)), ", "); ok {
		removeLeftovers(dir) // a supervisor that was killed could not clean up
	}
	_ = lock.Truncate(0)
	_, _ = lock.WriteAt([]byte(fmt.Sprintf("pid %d, %s\n", os.Getpid(), n.dir)), 0)
	// Nothing mounted here propagates to the host's mount namespace.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making / private in the node's mount namespace: %w", err)
	}
	// Orphaned containerd shims are re-parented to this process, which kills them on exit.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("PR_SET_CHILD_SUBREAPER: %w", err)
	}
	for _, d := range []string{"containerd", "cni/net.d", "cni/ipam", "var-lib-cni", "netns", "kubelet", "pod-logs", "runc", "volume-plugins"} {
		if err := os.MkdirAll(filepath.Join(n.state, d), 0o755); err != nil {
			return err
		}
	}
	// The CNI result cache and the network namespaces' bind mounts stay inside the test directory.
	for target, src := range map[string]string{"/var/lib/cni": "var-lib-cni", "/run/netns": "netns"} {
		if err := os.MkdirAll(target, 0o755); err != nil {
			return err
		}
		if err := unix.Mount(filepath.Join(n.state, src), target, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind-mounting %s: %w", target, err)
		}
	}
	if err := n.network(); err != nil {
		return fmt.Errorf("pod network: %w", err)
	}
	if err := n.cgroupRoot(); err != nil {
		return fmt.Errorf("cgroup root %s: %w", n.cgroup, err)
	}
	if err := n.writeConfigs(); err != nil {
		return err
	}
	env := append(os.Environ(), "PATH="+filepath.Join(n.tools, "bin")+":"+os.Getenv("PATH"))
	n.containerd, err = n.start("containerd", env, n.bin("containerd"), "--config", filepath.Join(n.state, "containerd.toml"))
	if err != nil {
		return err
	}
	sock := filepath.Join(n.state, "containerd", "containerd.sock")
	if err := n.waitContainerd(ctx, sock); err != nil {
		return err
	}
	pause, err := n.pauseArchive()
	if err != nil {
		return fmt.Errorf("pause image: %w", err)
	}
	if out, err := exec.Command(n.bin("ctr"), "--address", sock, "-n", "k8s.io", "images", "import", pause).CombinedOutput(); err != nil {
		return fmt.Errorf("importing the pause image: %v: %s", err, out)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	n.kubelet, err = n.start("kubelet", os.Environ(), self, "kubelet",
		"--config="+filepath.Join(n.state, "kubelet.yaml"),
		"--kubeconfig="+n.kubeconfig,
		"--root-dir="+filepath.Join(n.state, "kubelet"),
		"--cert-dir="+filepath.Join(n.state, "kubelet", "pki"),
		"--hostname-override="+nodeName,
		"--node-ip="+gateway,
		"--v=1")
	if err != nil {
		return err
	}
	type exit struct {
		name string
		err  error
	}
	exited := make(chan exit, 2)
	go func() { exited <- exit{"containerd", n.containerd.Wait()} }()
	go func() { exited <- exit{"kubelet", n.kubelet.Wait()} }()
	fmt.Println("NODE STARTED")
	select {
	case <-ctx.Done():
		return nil
	case x := <-exited:
		return fmt.Errorf("%s exited: %v", x.name, x.err)
	}
}

func (n *node) start(name string, env []string, path string, args ...string) (*exec.Cmd, error) {
	log, err := os.OpenFile(filepath.Join(n.dir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(path, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	return cmd, nil
}

func (n *node) waitContainerd(ctx context.Context, sock string) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if exec.Command(n.bin("ctr"), "--address", sock, "version").Run() == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("containerd did not answer on %s in 60s (see %s)", sock, filepath.Join(n.dir, "containerd.log"))
}

// podIdentityAgentIP is where EKS Pod Identity's agent listens on every node.
const podIdentityAgentIP = "169.254.170.23"

// network creates the bridge with the gateway address and the NAT rules (see the top of this
// file).
func (n *node) network() error {
	_ = exec.Command("ip", "link", "del", bridge).Run() // left by a run that was killed
	for _, args := range [][]string{
		{"link", "add", bridge, "type", "bridge"},
		{"addr", "add", gateway + "/24", "dev", bridge},
		{"link", "set", bridge, "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	if err := os.WriteFile("/proc/sys/net/ipv4/conf/"+bridge+"/route_localnet", []byte("1"), 0o644); err != nil {
		return err
	}
	n.removeNAT() // left by a run that was killed
	for _, r := range [][]string{
		{"-N", natChain},
		{"-A", natChain, "-d", kubernetesServiceIP + "/32", "-p", "tcp", "--dport", "443",
			"-j", "DNAT", "--to-destination", "127.0.0.1:" + strconv.Itoa(n.apiPort)},
		{"-A", natChain, "-d", gateway + "/32", "-p", "tcp", "-j", "DNAT", "--to-destination", "127.0.0.1"},
		{"-A", natChain, "-d", podIdentityAgentIP + "/32", "-p", "tcp", "-j", "DNAT", "--to-destination", "127.0.0.1"},
		{"-A", "PREROUTING", "-i", bridge, "-j", natChain},
	} {
		if out, err := exec.Command(n.bin("iptables"), append([]string{"-t", "nat"}, r...)...).CombinedOutput(); err != nil {
			return fmt.Errorf("iptables -t nat %s: %v: %s", strings.Join(r, " "), err, out)
		}
	}
	return nil
}

// removeNAT removes the jump to the NAT chain and the chain.
func (n *node) removeNAT() {
	for i := 0; i < 5; i++ {
		if exec.Command(n.bin("iptables"), "-t", "nat", "-D", "PREROUTING", "-i", bridge, "-j", natChain).Run() != nil {
			break
		}
	}
	_ = exec.Command(n.bin("iptables"), "-t", "nat", "-F", natChain).Run()
	_ = exec.Command(n.bin("iptables"), "-t", "nat", "-X", natChain).Run()
}

// removeLeftovers kills what a killed supervisor of the cluster in dir left running (the
// containers in its cgroup root, its containerd shims, re-parented to init) and removes its
// cgroups. Its bridge and NAT chain are replaced by network().
func removeLeftovers(dir string) {
	root := "/" + filepath.Base(dir)
	sock := filepath.Join(dir, "node", "containerd", "containerd.sock")
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if bytes.Contains(cmdline, []byte("containerd-shim")) && bytes.Contains(cmdline, []byte(sock)) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	for i := 0; i < 50 && killCgroup(root) > 0; i++ {
		time.Sleep(100 * time.Millisecond)
	}
	for _, h := range cgroupTrees() {
		removeCgroupTree(filepath.Join(h, root))
	}
}

// cgroupHierarchies lists the mounted cgroup v1 hierarchies (cpu, memory, pids, ...).
func cgroupHierarchies() []string {
	entries, _ := os.ReadDir("/sys/fs/cgroup")
	var out []string
	for _, e := range entries {
		p := filepath.Join("/sys/fs/cgroup", e.Name())
		var st unix.Statfs_t
		if e.IsDir() && e.Name() != "unified" && unix.Statfs(p, &st) == nil && st.Type == unix.CGROUP_SUPER_MAGIC {
			out = append(out, p)
		}
	}
	return out
}

// cgroupTrees lists where the containers' cgroups are made: the v1 hierarchies, and the cgroup2
// hierarchy at /sys/fs/cgroup/unified of a hybrid setup, where runc creates them too.
func cgroupTrees() []string {
	trees := cgroupHierarchies()
	var st unix.Statfs_t
	if unix.Statfs("/sys/fs/cgroup/unified", &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		trees = append(trees, "/sys/fs/cgroup/unified")
	}
	return trees
}

// cgroupRoot creates the kubelet's cgroup root in every hierarchy (the kubelet requires it to
// exist), so the Pods' cgroups sit under a name of this test run and are removed with it.
func (n *node) cgroupRoot() error {
	for _, h := range cgroupHierarchies() {
		p := filepath.Join(h, n.cgroup)
		if err := os.MkdirAll(p, 0o755); err != nil {
			return err
		}
		if filepath.Base(h) == "cpuset" {
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				v, err := os.ReadFile(filepath.Join(h, f))
				if err != nil {
					return err
				}
				if err := os.WriteFile(filepath.Join(p, f), v, 0o644); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (n *node) writeConfigs() error {
	nd := n.state
	containerd := fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = %[3]q

[ttrpc]
  address = %[4]q

[plugins."io.containerd.internal.v1.opt"]
  path = %[5]q

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %[6]q
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  disable_apparmor = true
  # This machine's root has no CAP_SYS_RESOURCE: an OOM score below containerd's own is refused
  # ("failed to update /proc/self/oom_score_adj: Permission denied" from runc).
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = %[7]q
        Root = %[8]q
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %[9]q
    conf_dir = %[10]q
    max_conf_num = 1
`, filepath.Join(nd, "containerd", "root"), filepath.Join(nd, "containerd", "state"),
		filepath.Join(nd, "containerd", "containerd.sock"), filepath.Join(nd, "containerd", "containerd.sock.ttrpc"),
		filepath.Join(nd, "containerd", "opt"), pauseImage, n.bin("runc"), filepath.Join(nd, "runc"),
		filepath.Join(n.tools, "bin", "cni"), filepath.Join(nd, "cni", "net.d"))
	cni := fmt.Sprintf(`{
  "cniVersion": "0.4.0",
  "name": "testcluster",
  "plugins": [
    {
      "type": "bridge",
      "bridge": %q,
      "isGateway": true,
      "isDefaultGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": %q,
        "ranges": [[{"subnet": %q, "gateway": %q}]]
      }
    },
    {"type": "loopback"}
  ]
}
`, bridge, filepath.Join(nd, "cni", "ipam"), podCIDR, gateway)
	kubelet := fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: %d
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 0
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: %q}
authorization: {mode: Webhook}
cgroupDriver: cgroupfs
cgroupRoot: %q
containerRuntimeEndpoint: unix://%s
failSwapOn: false
failCgroupV1: false
podLogsDir: %q
volumePluginDir: %q
resolvConf: /etc/resolv.conf
clusterDomain: cluster.local
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: 1%%, imagefs.available: 1%%}
serializeImagePulls: false
rotateCertificates: false
serverTLSBootstrap: false
syncFrequency: 10s
fileCheckFrequency: 10s
`, freePorts(1)[0], filepath.Join(n.dir, "pki", "ca.crt"), n.cgroup,
		filepath.Join(nd, "containerd", "containerd.sock"), filepath.Join(nd, "pod-logs"), filepath.Join(nd, "volume-plugins"))
	for name, text := range map[string]string{
		"containerd.toml":                   containerd,
		"cni/net.d/10-testcluster.conflist": cni,
		"kubelet.yaml":                      kubelet,
	} {
		if err := os.WriteFile(filepath.Join(nd, name), []byte(text), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// pauseArchive writes the sandbox image as an OCI archive: one uncompressed layer holding
// Debian's static catatonit, run as `catatonit -P` (pause mode: it only waits for signals).
func (n *node) pauseArchive() (string, error) {
	bin, err := os.ReadFile(n.bin("catatonit"))
	if err != nil {
		return "", err
	}
	var layer bytes.Buffer
	lw := tar.NewWriter(&layer)
	epoch := time.Unix(0, 0)
	if err := lw.WriteHeader(&tar.Header{Name: "catatonit", Mode: 0o755, Size: int64(len(bin)), ModTime: epoch, Typeflag: tar.TypeReg}); err != nil {
		return "", err
	}
	if _, err := lw.Write(bin); err != nil {
		return "", err
	}
	if err := lw.Close(); err != nil {
		return "", err
	}
	digest := func(b []byte) string { s := sha256.Sum256(b); return "sha256:" + hex.EncodeToString(s[:]) }
	layerDigest := digest(layer.Bytes())
	config, err := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux",
		"config": map[string]any{"Entrypoint": []string{"/catatonit", "-P"}, "User": "65535:65535"},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{layerDigest}},
	})
	if err != nil {
		return "", err
	}
	manifest, err := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(config), "size": len(config)},
		"layers": []any{map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layerDigest, "size": layer.Len()}},
	})
	if err != nil {
		return "", err
	}
	index, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"manifests": []any{map[string]any{
			"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest(manifest), "size": len(manifest),
			"annotations": map[string]string{"io.containerd.image.name": pauseImage, "org.opencontainers.image.ref.name": "catatonit"},
		}},
	})
	if err != nil {
		return "", err
	}
	files := map[string][]byte{
		"oci-layout": []byte(`{"imageLayoutVersion":"1.0.0"}`),
		"index.json": index,
	}
	for _, b := range [][]byte{layer.Bytes(), config, manifest} {
		files["blobs/sha256/"+strings.TrimPrefix(digest(b), "sha256:")] = b
	}
	path := filepath.Join(n.state, "pause.oci.tar")
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	names := make([]string, 0, len(files))
	for k := range files {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Name: d, Mode: 0o755, Typeflag: tar.TypeDir, ModTime: epoch}); err != nil {
			return "", err
		}
	}
	for _, name := range names {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(files[name])), ModTime: epoch, Typeflag: tar.TypeReg}); err != nil {
			return "", err
		}
		if _, err := tw.Write(files[name]); err != nil {
			return "", err
		}
	}
	return path, tw.Close()
}

// cleanup stops the kubelet, kills every container (all processes in the kubelet's cgroup root),
// stops containerd, kills the shims left as this process's children, and removes the cgroups,
// the NAT rules and the bridge. The mounts go with the mount namespace.
func (n *node) cleanup() {
	if !n.locked {
		return
	}
	stopCmd(n.kubelet, 5*time.Second)
	for i := 0; i < 50; i++ {
		if killCgroup(n.cgroup) == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	stopCmd(n.containerd, 5*time.Second)
	killChildren()
	for _, h := range cgroupTrees() {
		removeCgroupTree(filepath.Join(h, n.cgroup))
	}
	n.removeNAT()
	_ = exec.Command("ip", "link", "del", bridge).Run()
}

func stopCmd(c *exec.Cmd, grace time.Duration) {
	if c == nil || c.Process == nil {
		return
	}
	_ = c.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		for i := 0; i < int(grace/(50*time.Millisecond)); i++ {
			if c.Process.Signal(syscall.Signal(0)) != nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		close(done)
	}()
	<-done
	_ = c.Process.Kill()
}

// killCgroup SIGKILLs every process under the cgroup root (in the pids hierarchy) and returns
// how many it found.
func killCgroup(root string) int {
	found := 0
	_ = filepath.WalkDir(filepath.Join("/sys/fs/cgroup/pids", root), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
			return nil
		}
		data, _ := os.ReadFile(p)
		for _, f := range strings.Fields(string(data)) {
			if pid, err := strconv.Atoi(f); err == nil {
				found++
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		return nil
	})
	return found
}

// killChildren SIGKILLs and reaps every remaining child of this process (containerd shims
// re-parented here).
func killChildren() {
	self := strconv.Itoa(os.Getpid())
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		status, err := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(status), "\n") {
			if strings.HasPrefix(line, "PPid:") && strings.TrimSpace(strings.TrimPrefix(line, "PPid:")) == self {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, 0, nil)
		if pid <= 0 || errors.Is(err, syscall.ECHILD) {
			return
		}
	}
}

// removeCgroupTree removes a cgroup directory and its descendants, deepest first.
func removeCgroupTree(p string) {
	entries, err := os.ReadDir(p)
	if err != nil {
		return
	}
	for _, e := range entries {
		if e.IsDir() {
			removeCgroupTree(filepath.Join(p, e.Name()))
		}
	}
	for i := 0; i < 20; i++ {
		if err := unix.Rmdir(p); err == nil || errors.Is(err, unix.ENOENT) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}
