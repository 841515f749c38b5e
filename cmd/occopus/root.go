package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/occopus-go/occopus"
	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/internal/config"
	"github.com/occopus-go/occopus/store/etcd"
	"github.com/occopus-go/occopus/store/redis"
	"github.com/occopus-go/occopus/store/sqlite"
)

// Version is set at build time with -ldflags "-X main.Version=...".
var Version = "dev"

// ExitError carries an exit code; its message, if any, was already printed.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// env is what every command shares.
type env struct {
	stdout, stderr io.Writer
	stdin          io.Reader
	cfgPath        string
	authPath       string
	verbose        bool
	log            *slog.Logger
}

func (e *env) config() (*config.Config, error) {
	return config.Load(e.cfgPath, e.authPath)
}

// loadOptions are the options of reading the user's files: the size
// bound of the configuration (a configuration error shows when the
// command opens its session).
func (e *env) loadOptions() descr.LoadOptions {
	cfg, err := e.config()
	if err != nil {
		return descr.LoadOptions{}
	}
	return descr.LoadOptions{MaxBytes: cfg.MaxDescriptionBytes}
}

// openStore opens the configured store.
func (e *env) openStore(ctx context.Context, cfg *config.Config) (occopus.Store, error) {
	switch cfg.Store.Protocol {
	case "sqlite":
		return sqlite.Open(ctx, cfg.Store.Path)
	case "redis":
		addr := net.JoinHostPort(cfg.Store.Host, strconv.Itoa(cfg.Store.Port))
		st, err := redis.Open(ctx, redis.Options{Addr: addr, DB: cfg.Store.DB, Password: cfg.Store.Password, Prefix: cfg.Store.Prefix})
		if err != nil {
			return nil, fmt.Errorf("%s: components.uds: %w", cfg.File, err)
		}
		return st, nil
	case "etcd":
		st, err := etcd.Open(ctx, etcd.Options{Endpoints: cfg.Store.Endpoints, Prefix: cfg.Store.Prefix,
			Username: cfg.Store.Username, Password: cfg.Store.Password,
			CertFile: cfg.Store.CertFile, KeyFile: cfg.Store.KeyFile, CAFile: cfg.Store.CAFile})
		if err != nil {
			return nil, fmt.Errorf("%s: components.uds: %w", cfg.File, err)
		}
		return st, nil
	}
	return nil, fmt.Errorf("unknown store protocol %q", cfg.Store.Protocol)
}

// multiCall maps the names of the original Occopus commands
// (occopus-build, occopus-import, ...) to sub-commands.
func multiCall(argv0 string, args []string) []string {
	base := filepath.Base(argv0)
	if name, ok := strings.CutPrefix(base, "occopus-"); ok && name != "" {
		return append([]string{name}, args...)
	}
	return args
}

// Run runs the command line and returns the exit code.
func Run(ctx context.Context, argv0 string, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{stdout: stdout, stderr: stderr, stdin: stdin}
	root := newRoot(e)
	root.SetArgs(multiCall(argv0, args))
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		if ee.Err != nil {
			fmt.Fprintln(stderr, "occopus:", cleanText(ee.Err.Error()))
		}
		return ee.Code
	}
	fmt.Fprintln(stderr, "occopus:", cleanText(err.Error()))
	return 1
}

func newRoot(e *env) *cobra.Command {
	root := &cobra.Command{
		Use: "occopus",
		Example: `  occopus import nodes/node_definitions.yaml
  occopus build infra.yaml
  occopus maintain -l`,
		Short:         "Build, maintain, scale and destroy virtual infrastructures described in Occopus YAML",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRun: func(cmd *cobra.Command, _ []string) {
			level := slog.LevelWarn
			if e.verbose {
				level = slog.LevelDebug
			}
			e.log = slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))
		},
	}
	pf := root.PersistentFlags()
	pf.StringVar(&e.cfgPath, "cfg", "", "configuration file (default $OCCOPUS_HOME/occopus_config.yaml when present)")
	pf.StringVar(&e.authPath, "auth_data_path", "", "credentials file (default $OCCOPUS_HOME/auth_data.yaml when present)")
	pf.BoolVarP(&e.verbose, "verbose", "v", false, "log debug messages on stderr")
	root.AddCommand(
		newImport(e),
		newValidate(e),
		newRender(e),
		newBuild(e),
		newDestroy(e),
		newMaintain(e),
		newEvents(e),
		newScale(e),
		newPlan(e),
		newOrphans(e),
		newVersion(e),
		newRESTService(e),
		newMigrate(e),
	)
	return root
}

func newVersion(e *env) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the version",
		Example: "  occopus version",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(e.stdout, "occopus %s\n", Version)
			return nil
		},
	}
}
