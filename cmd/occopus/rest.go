package main

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/occopus-go/occopus"
	"github.com/occopus-go/occopus/auth"
	"github.com/occopus-go/occopus/rest"
)

func newRESTService(e *env) *cobra.Command {
	var (
		host, token, certFile, keyFile string
		port                           int
		parallelize, insecure          bool
		interval                       float64
	)
	cmd := &cobra.Command{
		Use:   "rest-service [--host 127.0.0.1] [--port 5000] [--token T] [--tls-cert F --tls-key F] [--parallelize] [--interval SECONDS]",
		Short: "Serve Occopus's REST API and maintain every attached infrastructure",
		Long: `Serve Occopus's REST API (POST /infrastructures/, GET /infrastructures/{id},
scaleup, scaledown, scaleto, attach, detach, notify, DELETE) plus /openapi.yaml,
/healthz and /metrics. On start, every attached infrastructure in the store is
maintained again. With ha: on (the default with an etcd store), several
replicas on one store share the attached infrastructures: each is maintained by
the one replica holding its lease, and the others take over within the lease
ttl (ha: {lease_ttl: 10s}) when it dies. SIGINT or SIGTERM shut the service down gracefully; the
infrastructures keep running.

The service listens on loopback by default. With a token (--token or
$OCCOPUS_TOKEN) every request but /healthz needs "Authorization: Bearer TOKEN";
listening on any other address without a token is refused unless --insecure.
Host and port default to components: rest: of occopus_config.yaml.`,
		Example: `  occopus rest-service
  occopus rest-service --host 0.0.0.0 --port 5000 --token "$(cat token)"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := e.config()
			if err != nil {
				return err
			}
			if !cmd.Flags().Changed("host") {
				host = cfg.REST.Host
			}
			if !cmd.Flags().Changed("port") {
				port = cfg.REST.Port
			}
			if token == "" {
				token = os.Getenv("OCCOPUS_TOKEN")
			}
			var ad *auth.Data
			if cfg.AuthDataPath != "" {
				if ad, err = auth.Load(cfg.AuthDataPath); err != nil {
					return err
				}
			}
			secrets := ad.Secrets()
			if token != "" {
				secrets = append(secrets, token)
			}
			level := slog.LevelInfo
			if e.verbose {
				level = slog.LevelDebug
			}
			log := slog.New(auth.RedactHandler(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}), secrets))
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			st, err := e.openStore(ctx, cfg)
			if err != nil {
				return err
			}
			defer st.Close()
			mopt := e.managerOptions(cfg, ad)
			mopt.Store, mopt.Log, mopt.Parallelize = st, log, parallelize
			mopt.Interval = time.Duration(interval * float64(time.Second))
			if cfg.HA.Enabled {
				// Replicas on one store share the attached infrastructures.
				mopt.Share = true
				if mopt.LeaseTTL == 0 {
					mopt.LeaseTTL = occopus.DefaultHALeaseTTL
				}
			}
			m, err := occopus.New(mopt)
			if err != nil {
				return err
			}
			defer m.Close()
			srv, err := rest.New(m, rest.Config{Host: host, Port: port, Token: token, Insecure: insecure,
				CertFile: certFile, KeyFile: keyFile, AllowFileImports: cfg.AllowFileImports, Secrets: secrets, Log: log,
				MaxDescriptionBytes: cfg.MaxDescriptionBytes, WebhookAllow: cfg.WebhookAllow})
			if err != nil {
				return err
			}
			return srv.ListenAndServe(ctx, func(url string) {
				fmt.Fprintf(e.stderr, "occopus REST service on %s\n", url)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&host, "host", "127.0.0.1", "address to listen on (default: components.rest.host of the configuration, else 127.0.0.1)")
	f.IntVar(&port, "port", 5000, "port to listen on, 0 for any free one (default: components.rest.port, else 5000)")
	f.StringVar(&token, "token", "", "bearer token every request must carry (default $OCCOPUS_TOKEN)")
	f.BoolVar(&insecure, "insecure", false, "allow listening on a non-loopback address without a token")
	f.StringVar(&certFile, "tls-cert", "", "serve HTTPS with this certificate (PEM)")
	f.StringVar(&keyFile, "tls-key", "", "private key of --tls-cert (PEM)")
	f.BoolVar(&parallelize, "parallelize", false, "create the nodes of a level, and drop instances, concurrently")
	f.Float64Var(&interval, "interval", 10, "seconds between maintenance passes of attached infrastructures")
	return cmd
}
