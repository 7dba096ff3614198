package cli

import (
	"cmp"
	"fmt"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"syscall"
	"time"

	"github.com/berth-ml/berth/internal/frontend"
	"github.com/berth-ml/berth/internal/installer"
	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

func (a *app) frontendCommand() *cobra.Command {
	var (
		kubeconfig, namespace, configName, httpAddr, httpsAddr, adminAddr, podName, logFormat, static, httpServer string
		accessLog, autoscale                                                                                      bool
		downWindow                                                                                                time.Duration
	)
	cmd := &cobra.Command{
		Use:   "frontend",
		Short: "Run berth-fe, the scoring front end (inside a cluster, or against one with --kubeconfig)",
		Long: `Run the scoring front end. It reads routes, keys, replica pods and its TLS
certificate from the cluster and serves scoring requests on HTTP and HTTPS; it
needs nothing from the control plane, so scoring goes on while that is down.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			httpAddr, httpsAddr, adminAddr = a.bindAddr(httpAddr), a.bindAddr(httpsAddr), a.bindAddr(adminAddr)
			log, err := newLogger(logFormat, "info", os.Stderr)
			if err != nil {
				return err
			}
			if os.Getenv("GOGC") == "" {
				// The heap is small and short-lived: collecting less often buys
				// about a tenth more throughput (bench/frontend.sh).
				debug.SetGCPercent(400)
			}
			if static != "" {
				fe := frontend.New(log)
				fe.AccessLog = accessLog
				fe.HTTPServer = httpServer
				if err := fe.LoadStatic(static); err != nil {
					return err
				}
				ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
				defer stop()
				return fe.Serve(ctx, frontend.Listeners{HTTP: httpAddr, HTTPS: httpsAddr, Admin: adminAddr})
			}
			var rc *rest.Config
			if kubeconfig != "" {
				rc, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
			} else {
				rc, err = rest.InClusterConfig()
			}
			if err != nil {
				return fmt.Errorf("cluster access: %w (outside a cluster, pass --kubeconfig)", err)
			}
			rc.QPS, rc.Burst = 50, 100
			cs, err := kubernetes.NewForConfig(rc)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			settings := map[string]string{}
			if configName != "" {
				if cm, err := cs.CoreV1().ConfigMaps(namespace).Get(ctx, configName, metav1.GetOptions{}); err == nil {
					settings = cm.Data
				}
			}
			tlsSecret := cmp.Or(settings["tlsSecret"], "berth-fe-tls")
			fe := frontend.New(log)
			if every, err := time.ParseDuration(settings["metricsInterval"]); err == nil && every > 0 && settings["metricsURL"] != "" {
				go (&frontend.Reporter{Frontend: fe, URL: settings["metricsURL"], TokenFile: installer.ControlPlaneTokenFile,
					Interval: every, Log: log}).Run(ctx)
			}
			fe.AccessLog = accessLog
			fe.HTTPServer = httpServer
			w := &frontend.Watcher{Client: cs, Frontend: fe, Namespace: namespace, TLSSecret: tlsSecret, Self: podName,
				PeerPort: portOf(httpAddr, 8080)}
			errc := make(chan error, 2)
			go func() { errc <- w.Run(ctx) }()
			if autoscale {
				id := podName
				if id == "" {
					host, _ := os.Hostname()
					id = host + "-" + strconv.Itoa(os.Getpid())
				}
				as := &frontend.Autoscaler{Client: cs, Frontend: fe, Namespace: namespace, Identity: id, DownWindow: downWindow,
					Peers: func() []string { return w.PeerAdmins(portOf(adminAddr, 9090)) }}
				go as.Run(ctx)
			}
			go func() { errc <- fe.Serve(ctx, frontend.Listeners{HTTP: httpAddr, HTTPS: httpsAddr, Admin: adminAddr}) }()
			select {
			case err := <-errc:
				stop()
				return err
			case <-ctx.Done():
				return nil
			}
		},
	}
	f := cmd.Flags()
	f.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig (default: the in-cluster ServiceAccount)")
	f.StringVar(&static, "static", "", "serve fixed services from this JSON file instead of a cluster (see frontend.StaticConfig)")
	f.StringVar(&namespace, "namespace", "berth-system", "the front end's namespace (its TLS Secret, Lease and peers)")
	f.StringVar(&configName, "routes", "berth-fe-config", "ConfigMap with the front end's settings (its TLS secret)")
	// --config was this flag's name, which hid the global --config.
	f.StringVar(&configName, "config", "berth-fe-config", "ConfigMap with the front end's settings")
	deprecatedAlias(f, "config", "use --routes (--config names berth's config file)")
	f.StringVar(&httpAddr, "http", ":8080", "HTTP scoring address (an empty host means every address, or $"+listenHostEnv+" when set)")
	f.StringVar(&httpsAddr, "https", ":8443", "HTTPS scoring address (empty: none)")
	f.StringVar(&adminAddr, "admin", ":9090", "metrics and internal address")
	f.StringVar(&podName, "pod-name", os.Getenv("POD_NAME"), "this front end's pod name (env POD_NAME), for sharing replicas with its peers")
	f.StringVar(&logFormat, "log-format", "json", "log format: text or json")
	f.BoolVar(&accessLog, "access-log", true, "log every request")
	f.StringVar(&httpServer, "http-server", frontend.ServerBerth, "HTTP server of the scoring listeners: berth (lean HTTP/1.1) or go (net/http)")
	f.BoolVar(&autoscale, "autoscale", true, "take part in autoscaling (one front end decides at a time)")
	f.DurationVar(&downWindow, "scale-down-window", 60*time.Second, "how long lower demand must last before scaling down")
	return cmd
}

// listenHostEnv names the address that stands for "every address" in
// listen flags (":8080"). Pods that share the node's network, as in the
// simulated cluster's container kubelet, set it to their own IP so that
// several listen on one machine.
const listenHostEnv = "BERTH_LISTEN_HOST"

// bindAddr is addr with an empty host replaced by BERTH_LISTEN_HOST, when
// that is set.
func (a *app) bindAddr(addr string) string {
	host := a.getenv(listenHostEnv)
	if host == "" || addr == "" {
		return addr
	}
	h, p, err := net.SplitHostPort(addr)
	if err != nil || h != "" {
		return addr
	}
	return net.JoinHostPort(host, p)
}

func portOf(addr string, def int) int {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return def
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		return def
	}
	return n
}
