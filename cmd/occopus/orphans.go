package main

import (
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/occopus-go/occopus"
	"github.com/occopus-go/occopus/auth"
)

func newOrphans(e *env) *cobra.Command {
	var (
		remove bool
		format string
	)
	cmd := &cobra.Command{
		Use:   "orphans [--remove] [--format json]",
		Short: "List (and with --remove, remove) backend resources the store does not know of",
		Long: `Look for orphans: containers, processes and VMs labelled by occopus whose
infrastructure is not in the store, or whose node is not recorded in it (a
record lost, a store restored from an older backup, a crash at the wrong
moment in an older version). Every backend configuration the store knows of
(the resource sections of its instances and node definitions) is listed.

Every resource carries the id of the store that made it. Those of this store
are "found"; those of another installation sharing the Docker engine or the
cloud account, and those carrying no store id, are "foreign" and never
removed. Without --remove nothing is changed. With --remove this store's
orphans are removed at once (the REST service's periodic sweep waits until
it has seen one for the grace period, orphans: grace in occopus_config.yaml).

The table (BACKEND, ID, INFRA, NODE, FIRST SEEN, STATE) goes to stdout, the
store's id and a summary to stderr. Exit status 1 when a removal failed or a
backend could not be asked.`,
		Example: "  occopus orphans\n  occopus orphans --remove",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "text" && format != "json" {
				return fmt.Errorf("--format %q: want text or json", format)
			}
			ctx := cmd.Context()
			s, err := e.orphanSession(ctx, remove)
			if err != nil {
				return err
			}
			defer s.Close()
			rep, err := s.m.Orphans(ctx, remove)
			if rep == nil {
				return err
			}
			if format == "json" {
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				if jerr := enc.Encode(rep); jerr != nil {
					return jerr
				}
			} else {
				printOrphans(e, rep)
			}
			failed := err != nil || len(rep.Failed) > 0
			for _, o := range rep.Orphans {
				if o.Error != "" {
					fmt.Fprintf(e.stderr, "could not remove %s %s: %s\n", cleanLine(o.Backend), cleanLine(o.ID), cleanLine(o.Error))
				}
			}
			for _, f := range rep.Failed {
				fmt.Fprintf(e.stderr, "could not look at %s: %s\n", cleanLine(f.Backend), cleanLine(f.Error))
			}
			if failed {
				return &ExitError{Code: 1}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&remove, "remove", false, "remove this store's orphans now (never another store's)")
	cmd.Flags().StringVar(&format, "format", "text", "output format: text (a table) or json")
	return cmd
}

// orphanSession is the session of `orphans`: with --remove the user asked
// for the removal, so this Manager, which has seen nothing before, does
// not wait the grace period.
func (e *env) orphanSession(ctx context.Context, remove bool) (*session, error) {
	cfg, err := e.config()
	if err != nil {
		return nil, err
	}
	var ad *auth.Data
	if cfg.AuthDataPath != "" {
		if ad, err = auth.Load(cfg.AuthDataPath); err != nil {
			return nil, err
		}
	}
	st, err := e.openStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	opt := e.managerOptions(cfg, ad)
	opt.Store = st
	if remove {
		opt.Orphans.Grace = -1
	}
	m, err := occopus.New(opt)
	if err != nil {
		st.Close()
		return nil, err
	}
	return &session{cfg: cfg, st: st, m: m}, nil
}

// printOrphans writes the table on stdout and the summary on stderr.
func printOrphans(e *env, rep *occopus.OrphanReport) {
	store := rep.StoreID
	if store == "" {
		store = "(none: this store has no id, so no resource is provably its own)"
	}
	fmt.Fprintf(e.stderr, "store %s: %d orphan(s): %d found, %d removed, %d foreign (%d backend configuration(s) asked)\n",
		cleanLine(store), len(rep.Orphans), rep.Count(occopus.OrphanFound), rep.Count(occopus.OrphanRemoved),
		rep.Count(occopus.OrphanForeign), rep.Configurations)
	if len(rep.Orphans) == 0 {
		return
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "BACKEND\tID\tINFRA\tNODE\tFIRST SEEN\tSTATE")
	for _, o := range rep.Orphans {
		node := o.NodeID
		if o.NodeName != "" {
			node = o.NodeName + " " + o.NodeID
		}
		state := o.State
		switch {
		case o.State == occopus.OrphanForeign && o.StoreID == "":
			state += " (no store id)"
		case o.State == occopus.OrphanForeign:
			state += " (store " + o.StoreID + ")"
		case o.Error != "":
			state += " (removal failed)"
		}
		infra := o.InfraID
		if !o.KnownInfra {
			infra += " (unknown)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", cleanLine(o.Backend), cleanLine(o.ID), cleanLine(infra), cleanLine(node),
			o.FirstSeen.Local().Format(time.DateTime), cleanLine(state))
	}
	tw.Flush()
}
