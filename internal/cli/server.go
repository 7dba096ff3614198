package cli

import (
	"cmp"
	"context"
	"fmt"
	"github.com/berth-ml/berth/internal/provider/local"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/berth-ml/berth/internal/artifact"
	"github.com/berth-ml/berth/internal/cli/config"
	"github.com/berth-ml/berth/internal/imageref"
	"github.com/berth-ml/berth/internal/preflight"
	"github.com/berth-ml/berth/internal/server"
	"github.com/berth-ml/berth/internal/version"
	"github.com/spf13/cobra"
)

// DefaultListen is where `berth server` listens unless told otherwise.
const DefaultListen = "127.0.0.1:8470"

// dataDir is the server's data directory: --data-dir, else $BERTH_DATA_DIR,
// else the default.
func (a *app) dataDir(flag string) string {
	return cmp.Or(flag, a.getenv(config.EnvDataDir), config.DefaultDataDir())
}

func newLogger(format, level string, w *os.File) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, usageErrorf("--log-level %q: use debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usageErrorf("--log-format %q: use text or json", format)
}

func (a *app) serverCommand() *cobra.Command {
	var (
		dataDir, listen, database, logFormat, logLevel                           string
		versions, image, imageRepo, publicURL, artifactStore                     string
		lease, poll, reconcile, metricsEvery, readyTimeout, certCheck, certRetry time.Duration
		acmeHTTPPort                                                             int
		maxModelUnpacked                                                         string
		maxModelFiles                                                            int
	)
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the Berth control plane (REST API, store, operations)",
		Long: `Run the Berth control plane.

The store is an SQLite file in the data directory unless --database names a
PostgreSQL database (postgres://...), which several servers may share: each
operation then runs on exactly one of them, and another takes it over if
that server dies. Model artifacts are kept in DATA_DIR/artifacts unless
--artifact-store names an S3-compatible bucket, which several servers
sharing a PostgreSQL database need:

  --artifact-store 's3://BUCKET[/PREFIX]?endpoint=HOST:PORT&region=REGION&insecure=true'

with the credentials in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and
AWS_SESSION_TOKEN, if any). Without endpoint= it is AWS S3; insecure=true
talks plain HTTP. The server checks the bucket before it starts. On first start the server writes an owner token to
DATA_DIR/admin.token (mode 0600); the CLI uses it for a local server. When
BERTH_OWNER_TOKEN holds a token (bth_ and 43 or more letters, digits, - or _,
as the Helm chart generates into a Secret), the server adopts it as an owner
token once per database instead, and writes no file.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(logFormat, logLevel, os.Stderr)
			if err != nil {
				return err
			}
			database = cmp.Or(database, a.getenv("BERTH_DATABASE_URL"))
			artifactStore = cmp.Or(artifactStore, a.getenv("BERTH_ARTIFACT_STORE"))
			if lease < time.Second {
				return usageErrorf("--operation-lease must be at least 1s")
			}
			publicURL = cmp.Or(publicURL, a.getenv("BERTH_PUBLIC_URL"))
			if publicURL != "" {
				if u, err := url.Parse(publicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
					return usageErrorf("--public-url %q is not an http(s) URL", publicURL)
				}
			}
			if err := checkImageFlags(cmd, image, imageRepo); err != nil {
				return err
			}
			if !cmd.Flags().Changed("image-repository") {
				imageRepo = "" // the server's default, unless --frontend-image pins the image
			}
			var limits artifact.Limits
			if limits.MaxUnpackedBytes, err = artifact.ParseSize(maxModelUnpacked); err != nil {
				return usageErrorf("%s: %v", artifact.FlagMaxUnpackedBytes, err)
			}
			if limits.MaxFiles = maxModelFiles; maxModelFiles < 1 {
				return usageErrorf("%s must be at least 1", artifact.FlagMaxFiles)
			}
			vr, err := preflight.ParseVersionRange(versions)
			if err != nil {
				return usageErrorf("--kubernetes-versions: %v", err)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			srv, err := server.New(ctx, server.Config{
				DataDir: a.dataDir(dataDir), Listen: listen, DatabaseURL: database,
				Lease: lease, Poll: poll, Logger: log, Getenv: a.getenv,
				KubernetesVersions: vr, FrontendImage: image, ImageRepository: imageRepo, ReconcileInterval: reconcile, MetricsInterval: metricsEvery, ReadyTimeout: readyTimeout,
				PublicURL:                publicURL,
				ArtifactStore:            artifactStore,
				ModelLimits:              limits,
				CertificateCheckInterval: certCheck, ACMEHTTPPort: acmeHTTPPort, CertificateRetryBase: certRetry,
				Providers: a.providers, ReplicaLauncher: replicaLauncher(),
			})
			if err != nil {
				return err
			}
			listen = a.bindAddr(listen) // ":8470" in a pod on the node's network
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("listen on %s: %w", listen, err)
			}
			return srv.Serve(ctx, ln)
		},
	}
	f := cmd.Flags()
	f.StringVar(&dataDir, "data-dir", "", "data directory (env BERTH_DATA_DIR; default ~/.berth/data)")
	f.StringVar(&listen, "listen", DefaultListen, "address to listen on (\":8470\": every address, or BERTH_LISTEN_HOST when set)")
	f.StringVar(&database, "database", "", "database URL: postgres://... (env BERTH_DATABASE_URL; default the SQLite file DATA_DIR/berth.db)")
	f.StringVar(&artifactStore, "artifact-store", "", "where model artifacts are kept: s3://BUCKET[/PREFIX]?endpoint=HOST:PORT&region=REGION&insecure=true (env BERTH_ARTIFACT_STORE; credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; default DATA_DIR/artifacts)")
	f.StringVar(&maxModelUnpacked, "max-model-unpacked-bytes", artifact.FormatSize(artifact.DefaultMaxUnpackedBytes), "the most a model artifact may unpack to (the total size of its files), such as 20GiB: registration refuses larger archives, and replicas unpack under it")
	f.IntVar(&maxModelFiles, "max-model-files", artifact.DefaultMaxFiles, "the most files and folders a model archive may hold: registration refuses more, and replicas unpack under it")
	f.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	f.DurationVar(&lease, "operation-lease", 15*time.Second, "how long an operation's claim lasts without renewal (another server takes over after it)")
	f.DurationVar(&poll, "operation-poll", time.Second, "how often to look for operations queued by other servers")
	f.MarkHidden("operation-poll")
	f.StringVar(&versions, "kubernetes-versions", preflight.DefaultVersions.String(), "supported Kubernetes minor versions, as 1.MIN-1.MAX")
	f.StringVar(&imageRepo, "image-repository", server.DefaultImageRepository, "registry and repository of Berth's image (REGISTRY[:PORT]/PATH, no tag): the front end installed into clusters and service replicas' init containers run REPOSITORY:"+version.Get().Version+", this server's version; point it at your mirror when clusters cannot reach ghcr.io")
	f.StringVar(&image, "frontend-image", "", "full image reference (REPOSITORY:TAG or @DIGEST) to run instead of --image-repository's image tagged with this server's version")
	f.DurationVar(&reconcile, "reconcile-interval", 5*time.Minute, "how often every compute is reconciled (drift repaired, health refreshed)")
	f.DurationVar(&metricsEvery, "metrics-interval", 10*time.Second, "how often the front ends' metrics are read for `berth service metrics` and the Studio's plots (kept 1h at 10s and 24h at 1m resolution)")
	f.MarkHidden("metrics-interval")
	f.StringVar(&publicURL, "public-url", "", "this server's URL as pods in attached clusters reach it; their init containers fetch models from it (env BERTH_PUBLIC_URL)")
	f.DurationVar(&readyTimeout, "ready-timeout", 10*time.Minute, "how long an operation waits for a cluster's front end to be ready")
	f.DurationVar(&certCheck, "certificate-check-interval", time.Minute, "how often automatic certificates are checked for renewal (renewed when a third of their lifetime is left)")
	f.DurationVar(&certRetry, "certificate-retry-backoff", 30*time.Second, "wait after a failed certificate issuance before the next attempt (doubles after each failure, at most 1h)")
	f.IntVar(&acmeHTTPPort, "acme-http-port", 80, "port the ACME CA checks HTTP-01 answers on (Berth checks the front end answers there first)")
	f.MarkHidden("acme-http-port")
	cmd.AddCommand(a.resetOwnerTokenCommand())
	return cmd
}

// checkImageFlags refuses a bad --image-repository or --frontend-image (or
// both given) as usage errors, before the server opens or makes anything.
func checkImageFlags(cmd *cobra.Command, image, repo string) error {
	if cmd.Flags().Changed("frontend-image") && cmd.Flags().Changed("image-repository") {
		return usageErrorf("--frontend-image and --image-repository cannot both be given: --image-repository REGISTRY/PATH runs this server's version from there, --frontend-image names the whole image")
	}
	if cmd.Flags().Changed("frontend-image") {
		if err := imageref.Reference(image); err != nil {
			return usageErrorf("--frontend-image %q %v (want REGISTRY[:PORT]/PATH:TAG or @sha256:DIGEST)", image, err)
		}
		return nil
	}
	if err := imageref.Repository(repo); err != nil {
		return usageErrorf("--image-repository %q %v (want REGISTRY[:PORT]/PATH, such as %s; a whole image with its tag goes in --frontend-image)", repo, err, server.DefaultImageRepository)
	}
	if _, err := server.FrontendImage(repo); err != nil {
		return usageErrorf("--image-repository %q: %v", repo, err)
	}
	return nil
}

// serveLocal starts a server in this process on a free loopback port for
// commands that need one (quickstart); it returns its address and a stop
// function that waits for it to end.
func serveLocal(ctx context.Context, dataDir string, log *slog.Logger) (string, func(), error) {
	srv, err := server.New(ctx, server.Config{DataDir: dataDir, Logger: log, ReplicaLauncher: replicaLauncher()})
	if err != nil {
		return "", nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	sctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(sctx, ln)
	}()
	addr := "http://" + ln.Addr().String()
	return addr, func() { cancel(); <-done }, nil
}

func (a *app) resetOwnerTokenCommand() *cobra.Command {
	var dataDir, database string
	cmd := &cobra.Command{
		Use:   "reset-owner-token",
		Short: "Make a new owner token and write it to DATA_DIR/admin.token (needs local access)",
		Long: `Make a new owner token and write it to DATA_DIR/admin.token (mode 0600), for an
owner locked out: the file lost, or every owner token revoked. It opens the
server's store as the server does, so it needs the data directory with its
secret key (or BERTH_SECRET_KEY) and the database (--database or
BERTH_DATABASE_URL when the server uses PostgreSQL): only someone with local
access to the server can use it. Other tokens stay as they are; revoke them
with the new token if they leaked.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			database = cmp.Or(database, a.getenv("BERTH_DATABASE_URL"))
			id, path, err := server.ResetOwnerToken(cmd.Context(), server.Config{DataDir: a.dataDir(dataDir), DatabaseURL: database, Getenv: a.getenv})
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "New owner token %s written to %s\n", id, path)
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "the server's data directory (default ~/.berth/data)")
	cmd.Flags().StringVar(&database, "database", "", "the server's PostgreSQL URL, when it uses one (default: BERTH_DATABASE_URL, else SQLite in the data directory)")
	return cmd
}

// replicaLauncher is this binary's replica-exec, where replicas can be
// sandboxed.
func replicaLauncher() []string {
	exe, err := os.Executable()
	if err != nil || !local.SandboxAvailable {
		return nil
	}
	return []string{exe, "replica-exec"}
}
