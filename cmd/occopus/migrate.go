package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/occopus-go/occopus"
	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/internal/config"
	"github.com/occopus-go/occopus/internal/occoredis"
)

// envMigratePassword holds the password of Occopus's Redis, kept off the
// command line (where ps shows it).
const envMigratePassword = "OCCOPUS_MIGRATE_REDIS_PASSWORD"

func newMigrate(e *env) *cobra.Command {
	var from, user string
	var nodeDefDB, infraDB int
	var dry bool
	cmd := &cobra.Command{
		Use:   "migrate --from-redis HOST:PORT[/DB] [--user USER] [--node-def-db 1] [--infra-db 10] [--dry-run]",
		Short: "Take over what a running Occopus 1.10 keeps in its Redis: node definitions, infrastructures, instances, scaling requests",
		Long: `Read an Occopus 1.10 Redis store and take over everything in it: its node
definitions are imported, each infrastructure is recorded with its id, and
every instance still running is adopted by its backend id (the container id
inside Occopus's instance_id, the EC2 or Nova server id, ...), so that
maintain, scale and destroy work on it; pending scaling requests are stored,
clamped to the node's limits. Nothing is created or destroyed, and
Occopus's Redis is only read.

/DB is Occopus's uds db; node definitions and infrastructures are in its
altdbs (--node-def-db, --infra-db: Occopus's defaults 1 and 10; -1 means
the uds db). The password, if any, is read from $` + envMigratePassword + `.
With --dry-run, it only says what it would take over.`,
		Example: `  occopus migrate --from-redis localhost:6379 --dry-run
  occopus migrate --from-redis localhost:6379/0 --user root
  occopus maintain -l`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if from == "" {
				return fmt.Errorf("missing --from-redis HOST:PORT[/DB]: where Occopus's Redis listens")
			}
			addr, err := occoredis.ParseAddress(from)
			if err != nil {
				return err
			}
			addr.NodeDefDB, addr.InfraDB = nodeDefDB, infraDB
			if addr.Password == "" {
				addr.Password = os.Getenv(envMigratePassword)
			}
			ctx := cmd.Context()
			cfg, err := e.config()
			if err != nil {
				return err
			}
			if err := notOccopusDB(cfg, addr); err != nil {
				return err
			}
			old, err := occoredis.Read(ctx, addr, user)
			if err != nil {
				return fmt.Errorf("read Occopus's Redis at %s: %w", addr.Addr, err)
			}
			s, err := e.session(ctx, false, nil)
			if err != nil {
				return err
			}
			defer s.Close()
			verb := "taken over"
			if dry {
				verb = "would take over"
			}
			types := 0
			for _, u := range sortedKeys(old.NodeDefs) {
				defs, errs := nodeDefsOf(addr, u, old.NodeDefs[u])
				for _, de := range errs {
					fmt.Fprintln(e.stderr, cleanLine(de.Error()))
				}
				if len(defs.Types) == 0 {
					continue
				}
				types += len(defs.Types)
				fmt.Fprintf(e.stdout, "node definitions of %s: %s\n", u, strings.Join(defs.Types, ", "))
				if !dry {
					if err := s.m.ImportNodeDefs(ctx, defs); err != nil {
						return err
					}
				}
			}
			failed, adopted := 0, 0
			for _, oi := range old.Infras {
				rep, err := takeOver(ctx, s.m, addr, oi, dry)
				if err != nil {
					failed++
					fmt.Fprintf(e.stderr, "occopus: infrastructure %s (%s): %v\n", oi.ID, oi.Name, cleanText(err.Error()))
					continue
				}
				adopted += len(rep.Adopted)
				fmt.Fprintf(e.stdout, "infrastructure %s %q (user %s):\n", rep.ID, rep.Name, oi.User)
				for _, a := range rep.Adopted {
					lab := ""
					if a.Labelled {
						lab = " labelled"
					}
					fmt.Fprintf(e.stdout, "  %-12s %s %s %s %s %s%s\n", a.Node, a.NodeID, a.Backend, shortID(a.BackendID), a.State, orDash(a.Address), lab)
				}
				for _, r := range rep.Requests {
					fmt.Fprintf(e.stdout, "  scaling request: %s\n", r)
				}
				for _, n := range rep.Notes {
					fmt.Fprintf(e.stdout, "  note: %s\n", n)
				}
			}
			fmt.Fprintf(e.stdout, "%s: %d node type(s), %d infrastructure(s), %d instance(s) from %s\n", verb, types, len(old.Infras)-failed, adopted, addr.Addr)
			if failed > 0 {
				return &ExitError{Code: 1}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&from, "from-redis", "", "Occopus's Redis, HOST:PORT[/DB]")
	f.StringVar(&user, "user", "", "take over only this Occopus user's keys (USER@...; default: every user)")
	f.IntVar(&nodeDefDB, "node-def-db", 1, "Occopus's altdbs.node_def")
	f.IntVar(&infraDB, "infra-db", 10, "Occopus's altdbs.infra")
	f.BoolVar(&dry, "dry-run", false, "only say what would be taken over")
	return cmd
}

// notOccopusDB refuses a store that is one of Occopus's own databases: the
// takeover must not write where Occopus keeps its state.
func notOccopusDB(cfg *config.Config, a occoredis.Address) error {
	if cfg.Store.Protocol != "redis" {
		return nil
	}
	if net.JoinHostPort(cfg.Store.Host, strconv.Itoa(cfg.Store.Port)) != a.Addr {
		return nil
	}
	for _, db := range []int{a.DB, a.NodeDefDB, a.InfraDB} {
		if db >= 0 && db == cfg.Store.DB {
			return fmt.Errorf("the configured store (%s, components.uds) is Occopus's own Redis database %d: choose another db (or sqlite) so that Occopus's state is not written", cfg.File, db)
		}
	}
	return nil
}

// nodeDefsOf turns one user's stored definitions into a node definition
// file's content, each checked like a file; a type with errors is left out.
func nodeDefsOf(a occoredis.Address, user string, defs map[string]string) (*descr.NodeDefs, descr.Errors) {
	out := &descr.NodeDefs{Impls: map[string][]*descr.Impl{}}
	var errs descr.Errors
	for _, typ := range sortedKeys(defs) {
		name := fmt.Sprintf("redis://%s/%d/%s@%s", a.Addr, a.NodeDefDB, user, typ)
		list, err := descr.Parse(name, []byte(defs[typ]), descr.LoadOptions{NoImports: true})
		if err != nil {
			errs = append(errs, descr.AsErrors(err)...)
			continue
		}
		root := &descr.Node{Kind: descr.MapNode, Content: []*descr.Node{{Kind: descr.ScalarNode, Tag: "!!str", Value: "node_def:" + typ}, list}}
		d, err := descr.DecodeNodeDefs(name, root)
		if err != nil {
			errs = append(errs, descr.AsErrors(err)...)
			continue
		}
		out.Types = append(out.Types, typ)
		out.Impls[typ] = d.Impls[typ]
	}
	return out, errs
}

func takeOver(ctx context.Context, m *occopus.Manager, a occoredis.Address, oi *occoredis.Infra, dry bool) (*occopus.TakeoverReport, error) {
	src, err := oi.DescriptionYAML()
	if err != nil {
		return nil, err
	}
	name := fmt.Sprintf("redis://%s/%d/%s@%s:description", a.Addr, a.InfraDB, oi.User, oi.ID)
	in, err := descr.ParseInfra(name, src, descr.LoadOptions{NoImports: true})
	if err != nil {
		return nil, err
	}
	t := occopus.Takeover{ID: oi.ID, Desc: in}
	var notes []string
	for _, node := range sortedKeys(oi.Instances) {
		for _, inst := range oi.Instances[node] {
			typ, _ := inst.Resource["type"].(string)
			id, err := occoredis.BackendID(typ, inst.InstanceID)
			if err != nil {
				notes = append(notes, fmt.Sprintf("instance %s of node %s left aside: %v", inst.NodeID, node, err))
				continue
			}
			t.Instances = append(t.Instances, occopus.TakeoverInstance{NodeName: node, NodeID: inst.NodeID, Resource: inst.Resource, BackendID: id, CreatedAt: inst.StartedAt})
		}
	}
	for _, r := range oi.Requests {
		tr := occopus.TakeoverRequest{Node: r.Node, Set: r.Count}
		switch {
		case r.Create:
			tr.Change = 1
		case r.Destroy && r.Victim != "":
			tr.Victim = r.Victim
		case r.Destroy:
			tr.Change = -1
		}
		t.Requests = append(t.Requests, tr)
	}
	rep, err := m.Take(ctx, t, dry)
	if err != nil {
		return nil, err
	}
	rep.Notes = append(notes, rep.Notes...)
	if oi.Suspended {
		rep.Notes = append(rep.Notes, "Occopus had it suspended; it is not attached here either (attach with the REST service to maintain it continuously)")
	}
	return rep, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
