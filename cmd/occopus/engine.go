package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/occopus-go/occopus"
	"github.com/occopus-go/occopus/auth"
	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/internal/config"
	"github.com/occopus-go/occopus/store"
)

// session is an open configuration, store and manager.
type session struct {
	cfg *config.Config
	st  occopus.Store
	m   *occopus.Manager
}

func (s *session) Close() {
	s.m.Close()
	s.st.Close()
}

func (e *env) session(ctx context.Context, parallelize bool, onEvent func(occopus.Event)) (*session, error) {
	cfg, err := e.config()
	if err != nil {
		return nil, err
	}
	var ad *auth.Data
	if cfg.AuthDataPath != "" {
		ad, err = auth.Load(cfg.AuthDataPath)
		if err != nil {
			return nil, err
		}
	}
	st, err := e.openStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	opt := e.managerOptions(cfg, ad)
	opt.Store, opt.Parallelize = st, parallelize
	m, err := occopus.New(opt)
	if err != nil {
		st.Close()
		return nil, err
	}
	if onEvent != nil {
		m.Subscribe(occopus.Observer{Event: onEvent})
	}
	return &session{cfg: cfg, st: st, m: m}, nil
}

// managerOptions are the Manager options of the configuration: the one
// place the CLI turns occopus_config.yaml into library options.
func (e *env) managerOptions(cfg *config.Config, ad *auth.Data) occopus.Options {
	opt := occopus.Options{Home: cfg.Home, Log: e.log, AllowCmd: cfg.AllowCmd, AllowNetworkCmd: cfg.AllowNetworkCmd, Parallel: cfg.Parallel,
		RateLimit: cfg.RateLimit, RateBurst: cfg.RateBurst, MaxDescriptionBytes: cfg.MaxDescriptionBytes,
		Limits:    occopus.Limits{PerNode: cfg.Limits.PerNode, PerInfra: cfg.Limits.PerInfra, Total: cfg.Limits.Total},
		Retention: occopus.Retention{MaxAge: cfg.Events.MaxAge, PerInfra: cfg.Events.PerInfra},
		Orphans:   occopus.OrphanOptions{Sweep: cfg.Orphans.Sweep, Grace: cfg.Orphans.Grace, Interval: cfg.Orphans.Interval}}
	if ad != nil {
		opt.Auth = ad
	}
	opt.LeaseTTL = cfg.HA.LeaseTTL
	return opt
}

// progress prints one line per event on stderr; on a terminal, build
// shows a live table instead (buildProgress).
func (e *env) progress(ev occopus.Event) {
	if line := progressLine(ev); line != "" {
		fmt.Fprint(e.stderr, line)
	}
}

// buildProgress is the progress printer of build: a live table when
// stderr is a terminal, lines otherwise.
func (e *env) buildProgress() func(occopus.Event) {
	if isTerminal(e.stderr) {
		return newLiveTable(e.stderr).event
	}
	return e.progress
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// unknownInfra turns the engine's unknown-id error into exit status 1 with
// a clear message.
func unknownInfra(err error) error {
	if errors.Is(err, occopus.ErrUnknownInfra) {
		return fmt.Errorf("%w (see `occopus maintain -l`)", err)
	}
	return err
}

func newBuild(e *env) *cobra.Command {
	var parallelize bool
	var infraID string
	cmd := &cobra.Command{
		Use: "build [--parallelize] [-i ID] INFRA_FILE",
		Example: `  occopus build infra-docker-ping.yaml
  occopus build -i 1fcb2f27-2abd-46ec-8c5f-5e8f2e116757 infra-docker-ping.yaml   # reconfigure`,
		Short: "Build an infrastructure (or reconfigure one with -i) and wait until every node is ready",
		Long: `Build an infrastructure: submit the description, create its nodes level by
level and wait until every instance is ready. Progress goes to stderr, one
line per state change; a table of the nodes goes to stdout and the
infrastructure id is the last line of stdout.

With -i ID, a running infrastructure is reconfigured to the new description:
nodes are added and removed, new scaling limits and variables apply to new
instances.

On any error, or on Ctrl-C, everything this command created is destroyed
(creations in flight too) and the exit status is non-zero.`,
		Args: needArgs("INFRA_FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := wrongKind(args[0], "build"); err != nil {
				return err
			}
			in, err := descr.LoadInfra(args[0], e.loadOptions())
			if err != nil {
				return e.descrFailure(err)
			}
			e.warnings(in.Warnings)
			ctx := cmd.Context()
			s, err := e.session(ctx, parallelize, e.buildProgress())
			if err != nil {
				return err
			}
			defer s.Close()
			if infraID == "" {
				fmt.Fprintf(e.stderr, "building infrastructure %q\n", in.Name)
			} else {
				fmt.Fprintf(e.stderr, "reconfiguring infrastructure %s\n", infraID)
			}
			res, err := s.m.Build(ctx, in, infraID)
			if res == nil && err != nil {
				var des descr.Errors
				if errors.As(err, &des) {
					return e.descrFailure(err)
				}
				return unknownInfra(err)
			}
			if err != nil {
				return e.buildFailure(res, infraID == "", err)
			}
			fmt.Fprintf(e.stderr, "infrastructure %s: ready in %s\n", res.ID, res.Duration.Round(time.Millisecond))
			rep, err := s.m.Get(ctx, res.ID)
			if err != nil {
				return err
			}
			printTable(e.stdout, rep)
			fmt.Fprintln(e.stdout, res.ID)
			return nil
		},
	}
	cmd.Flags().BoolVar(&parallelize, "parallelize", false, "create the nodes of a level, and drop instances, concurrently")
	cmd.Flags().StringVarP(&infraID, "infra_id", "i", "", "reconfigure this running infrastructure to the new description")
	return cmd
}

// buildFailure reports a failed or interrupted build and what its
// rollback removed.
func (e *env) buildFailure(res *occopus.BuildResult, fresh bool, cause error) error {
	if errors.Is(cause, context.Canceled) {
		fmt.Fprintf(e.stderr, "interrupted: rolled back\n")
	} else {
		fmt.Fprintf(e.stderr, "build failed: rolled back\n")
	}
	if fresh {
		fmt.Fprintf(e.stderr, "removed %d instance(s)", len(res.RolledBack))
		if res.Orphans > 0 {
			fmt.Fprintf(e.stderr, " and %d unrecorded resource(s)", res.Orphans)
		}
		fmt.Fprintf(e.stderr, "; infrastructure %s deleted\n", res.ID)
	} else {
		fmt.Fprintf(e.stderr, "removed the %d instance(s) this build created; infrastructure %s kept\n", len(res.RolledBack), res.ID)
	}
	if errors.Is(cause, context.Canceled) {
		// As a shell reports a command ended by SIGINT: 128+2.
		return &ExitError{Code: 130}
	}
	return &ExitError{Code: 1, Err: cause}
}

// printTable writes the nodes, instances and addresses of a report.
func printTable(w interface{ Write([]byte) (int, error) }, rep occopus.Report) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tINSTANCE\tSTATE\tADDRESS\tSCALING")
	names := make([]string, 0, len(rep))
	for n := range rep {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		nr := rep[n]
		ids := make([]string, 0, len(nr.Instances))
		for id := range nr.Instances {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		sc := fmt.Sprintf("%d/%d (min %d, max %d)", nr.Scaling.Actual, nr.Scaling.Target, nr.Scaling.Min, nr.Scaling.Max)
		if len(ids) == 0 {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t%s\n", cleanLine(n), sc)
		}
		for _, id := range ids {
			in := nr.Instances[id]
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", cleanLine(n), cleanLine(id), cleanLine(in.State), cleanLine(orDash(in.ResourceAddress)), sc)
		}
	}
	tw.Flush()
}

// printCost writes, after the report table, what the instances have cost
// where their backends tell it (CloudBroker); nothing when none does.
// Backends that could not be asked are named on stderr.
func (e *env) printCost(ctx context.Context, s *session, id, filter string) {
	c, err := s.m.Cost(ctx, id)
	if err != nil {
		fmt.Fprintf(e.stderr, "cost: %s\n", cleanLine(err.Error()))
		return
	}
	type row struct{ node, id, cost string }
	var rows []row
	for name, nc := range c.Nodes {
		if filter != "" && name != filter {
			continue
		}
		for nid, ic := range nc.Instances {
			switch {
			case ic.Error != "":
				fmt.Fprintf(e.stderr, "cost of %s %s: %s\n", cleanLine(name), cleanLine(nid), cleanLine(ic.Error))
			case ic.TotalCost != nil:
				rows = append(rows, row{name, nid, money(*ic.TotalCost, ic.Currency)})
			}
		}
	}
	if len(rows) == 0 {
		return
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].node+rows[i].id < rows[j].node+rows[j].id })
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tINSTANCE\tCOST")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", cleanLine(r.node), cleanLine(r.id), cleanLine(r.cost))
	}
	total := c.TotalCost
	cur := c.Currency
	if filter != "" {
		total, cur = c.Nodes[filter].TotalCost, c.Nodes[filter].Currency
	}
	if total != nil {
		fmt.Fprintf(tw, "total\t\t%s\n", cleanLine(money(*total, cur)))
	} else {
		fmt.Fprintf(tw, "total\t\t- (in different currencies)\n")
	}
	tw.Flush()
}

func money(v float64, currency string) string {
	s := strconv.FormatFloat(v, 'f', -1, 64)
	if currency != "" {
		s += " " + currency
	}
	return s
}

func newDestroy(e *env) *cobra.Command {
	var infraID string
	var force bool
	cmd := &cobra.Command{
		Use:   "destroy -i ID [--force]",
		Short: "Destroy an infrastructure: every instance, and every resource labelled with its id",
		Long: `Destroy an infrastructure: every recorded instance, then every resource its
backends still hold under its id (what a crash left unrecorded), then its
record. When something cannot be removed the record stays and the command
can be run again; with --force the record goes anyway, and every resource
that may remain is listed with its backend and id, for you to remove.`,
		Example: "  occopus destroy -i 1fcb2f27-2abd-46ec-8c5f-5e8f2e116757\n  occopus destroy -i 1fcb2f27-2abd-46ec-8c5f-5e8f2e116757 --force   # its cloud endpoint is gone",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if infraID == "" {
				return fmt.Errorf("-i ID is required")
			}
			s, err := e.session(cmd.Context(), true, e.progress)
			if err != nil {
				return err
			}
			defer s.Close()
			tearDown := s.m.TearDown
			if force {
				tearDown = s.m.ForceTearDown
			}
			rep, err := tearDown(cmd.Context(), infraID)
			if rep != nil {
				fmt.Fprintf(e.stdout, "removed %d instance(s)", len(rep.Instances))
				if len(rep.Orphans) > 0 {
					fmt.Fprintf(e.stdout, " and %d unrecorded resource(s)", len(rep.Orphans))
				}
				fmt.Fprintln(e.stdout)
				e.printLeftovers(rep.Left, err == nil)
			}
			if err != nil {
				if rep != nil && len(rep.Left) > 0 && !force {
					fmt.Fprintf(e.stderr, "the record is kept; run destroy again, or with --force to remove it anyway\n")
				}
				return unknownInfra(err)
			}
			fmt.Fprintf(e.stdout, "infrastructure %s destroyed\n", infraID)
			return nil
		},
	}
	cmd.Flags().StringVarP(&infraID, "infra_id", "i", "", "infrastructure id")
	cmd.Flags().BoolVar(&force, "force", false, "remove the record even when some resources cannot be removed (they are listed)")
	return cmd
}

// printLeftovers lists what a destroy could not remove; gone says the
// record was removed all the same (forced), so the list is all that is
// left of them.
func (e *env) printLeftovers(left []occopus.Leftover, gone bool) {
	if len(left) == 0 {
		return
	}
	if gone {
		fmt.Fprintf(e.stderr, "%d resource(s) could not be removed and may still exist; remove them by hand:\n", len(left))
	} else {
		fmt.Fprintf(e.stderr, "%d resource(s) could not be removed:\n", len(left))
	}
	tw := tabwriter.NewWriter(e.stderr, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  NODE\tINSTANCE\tBACKEND\tID\tERROR")
	for _, l := range left {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", orDash(cleanLine(l.NodeName)), orDash(cleanLine(l.NodeID)), cleanLine(l.Backend),
			orDash(cleanLine(l.ID)), cleanLine(l.Error))
	}
	tw.Flush()
}

func newMaintain(e *env) *cobra.Command {
	var (
		list, report, cyclic, parallelize bool
		infraID, output, filter, format   string
		interval                          float64
	)
	cmd := &cobra.Command{
		Example: `  occopus maintain -l
  occopus maintain -i 1fcb2f27-2abd-46ec-8c5f-5e8f2e116757 -r
  occopus maintain -i 1fcb2f27-2abd-46ec-8c5f-5e8f2e116757 --format json   # implies -r
  occopus maintain -i 1fcb2f27-2abd-46ec-8c5f-5e8f2e116757 -c -t 30`,
		Use:   "maintain [-l] [-i ID [-c] [-t SECONDS] [-r [--format json]] [-o FILE] [-f NODE]] [--parallelize]",
		Short: "Maintain an infrastructure: heal failed nodes, carry out scale requests, report",
		Long: `Run a maintenance pass on an infrastructure: refresh every instance (backend
state and health checks), drop failed and shut-down ones, carry out pending
scale requests and create what is missing. With -c, passes repeat every -t
seconds until interrupted. -l lists the infrastructures; -r prints a report
after the pass (--format json prints the REST report shape, and implies -r); -o FILE writes
the instances' addresses, one per line; -f NODE limits -r and -o to a node.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if format != "text" && format != "json" {
				return fmt.Errorf("--format %q: want text or json", format)
			}
			if format == "json" && infraID != "" {
				// A JSON format is only wanted for the report: asking for it
				// asks for the report (-r).
				report = true
			}
			// With -c, progress comes from the event log, as `occopus
			// events -f` prints it: also what other processes record.
			progress := e.progress
			if cyclic {
				progress = nil
			}
			s, err := e.session(ctx, parallelize, progress)
			if err != nil {
				return err
			}
			defer s.Close()
			if cyclic && infraID != "" {
				// The follower writes beside this goroutine.
				prev := e.stderr
				e.stderr = &lockedWriter{w: prev}
				defer func() { e.stderr = prev }()
				// Where the log ends now, found before the first pass, so
				// that everything from here on is printed.
				var start int64
				if tail, err := store.TailEvents(ctx, s.st, infraID, 1); err == nil && len(tail) > 0 {
					start = tail[0].Seq
				}
				fctx, stop := context.WithCancel(ctx)
				done := make(chan struct{})
				go func() {
					defer close(done)
					err := s.m.Follow(fctx, occopus.FollowOptions{InfraID: infraID, After: start}, func(ev store.Event) error {
						_, err := io.WriteString(e.stderr, eventLine(ev))
						return err
					})
					if err != nil && fctx.Err() == nil && !errors.Is(err, occopus.ErrUnknownInfra) {
						fmt.Fprintf(e.stderr, "event log: %v\n", err)
					}
				}()
				defer func() { stop(); <-done }()
			}
			if list {
				return e.listInfras(ctx, s)
			}
			if infraID == "" {
				return fmt.Errorf("-i ID is required (or -l to list the infrastructures)")
			}
			if filter != "" {
				rep, err := s.m.Get(ctx, infraID)
				if err != nil {
					return unknownInfra(err)
				}
				if _, ok := rep[filter]; !ok {
					return fmt.Errorf("-f %q: no node named %q in infrastructure %s", filter, filter, infraID)
				}
			}
			for {
				res, err := s.m.Maintain(ctx, infraID)
				if err != nil && ctx.Err() == nil {
					if !cyclic {
						return unknownInfra(err)
					}
					fmt.Fprintf(e.stderr, "maintenance pass: %v\n", err)
				}
				if res != nil && len(res.Actions) > 0 {
					fmt.Fprintf(e.stderr, "pass: %d created, %d dropped\n", len(res.Created), len(res.Dropped))
				}
				if ctx.Err() != nil {
					return nil
				}
				if err := e.afterPass(ctx, s, infraID, report, format, output, filter); err != nil {
					return err
				}
				if !cyclic {
					return nil
				}
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(time.Duration(interval * float64(time.Second))):
				}
			}
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&list, "list", "l", false, "list the infrastructures")
	f.BoolVarP(&report, "report", "r", false, "print a report of the nodes after the pass")
	f.BoolVarP(&cyclic, "cyclic", "c", false, "repeat the pass every --interval seconds until interrupted")
	f.BoolVar(&parallelize, "parallelize", false, "create and drop instances concurrently")
	f.StringVarP(&infraID, "infra_id", "i", "", "infrastructure id")
	f.Float64VarP(&interval, "interval", "t", 10, "seconds between passes with -c")
	f.StringVarP(&output, "output", "o", "", "write the instances' addresses to FILE, one per line")
	f.StringVarP(&filter, "filter", "f", "", "only this node in the report and the output file")
	f.StringVar(&format, "format", "text", "report format: text or json")
	return cmd
}

func (e *env) listInfras(ctx context.Context, s *session) error {
	infras, err := s.m.List(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "INFRA ID\tNAME\tATTACHED\tINSTANCES\tAGE\tLAST PASS")
	now := time.Now()
	for _, inf := range infras {
		st, err := s.m.Status(ctx, inf.ID)
		if err != nil {
			return err
		}
		attached := "no"
		if st.Attached {
			attached = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", cleanLine(st.InfraID), cleanLine(st.Name), attached,
			stateCounts(st.Instances), age(now.Sub(st.CreatedAt)), lastPass(st.LastPass, now, 60))
	}
	return tw.Flush()
}

// stateCounts writes instance counts by state, ready first: "2 ready, 1 pending".
func stateCounts(m map[string]int) string {
	if len(m) == 0 {
		return "0"
	}
	order := []string{occopus.StateReady, occopus.StatePending, occopus.StateCreating, occopus.StateUnknown,
		occopus.StateFailed, occopus.StateShutdown, occopus.StateDestroying}
	var parts []string
	for _, st := range order {
		if n := m[st]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, st))
		}
	}
	return strings.Join(parts, ", ")
}

// age writes a duration as a person reads an age: 45s, 12m, 3h, 5d.
func age(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// lastPass writes the outcome of the last pass and, cut to width
// characters, its error: "ok 3s ago", "terminal 2m ago: node a: ...".
func lastPass(lp *occopus.PassStatus, now time.Time, width int) string {
	if lp == nil {
		return "-"
	}
	s := fmt.Sprintf("%s %s ago", lp.Result, age(now.Sub(lp.At)))
	if lp.Failures > 1 {
		s += fmt.Sprintf(" (%d in a row)", lp.Failures)
	}
	if lp.Error != "" {
		msg := cleanLine(lp.Error)
		if width > 0 && len([]rune(msg)) > width {
			msg = string([]rune(msg)[:width]) + "…"
		}
		s += ": " + msg
	}
	return s
}

func (e *env) afterPass(ctx context.Context, s *session, id string, report bool, format, output, filter string) error {
	if !report && output == "" {
		return nil
	}
	rep, err := s.m.Get(ctx, id)
	if err != nil {
		return unknownInfra(err)
	}
	if filter != "" {
		rep = occopus.Report{filter: rep[filter]}
	}
	if report {
		if format == "json" {
			if err := writeJSON(e.stdout, rep); err != nil {
				return err
			}
		} else {
			printTable(e.stdout, rep)
			e.printCost(ctx, s, id, filter)
			if st, err := s.m.Status(ctx, id); err == nil && st.LastPass != nil && st.LastPass.Result != occopus.PassOK {
				fmt.Fprintf(e.stdout, "last pass: %s\n", lastPass(st.LastPass, time.Now(), 0))
			}
		}
	}
	if output != "" {
		var lines []string
		for _, nr := range rep {
			for _, in := range nr.Instances {
				if in.ResourceAddress != "" {
					lines = append(lines, in.ResourceAddress)
				}
			}
		}
		sort.Strings(lines)
		text := strings.Join(lines, "\n")
		if text != "" {
			text += "\n"
		}
		if err := os.WriteFile(output, []byte(text), 0o644); err != nil {
			return err
		}
	}
	return nil
}
