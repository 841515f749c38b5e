package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/occopus-go/occopus"
	"github.com/occopus-go/occopus/descr"
)

func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, string(b))
	return err
}

func newScale(e *env) *cobra.Command {
	var (
		infraID, node, victim string
		change, set           int
	)
	cmd := &cobra.Command{
		Use:   "scale -i ID -n NODE (-c N | -s N | -f NODE_ID_OR_IP)",
		Short: "Ask the next maintenance pass to scale a node",
		Long: `Store a scaling request for a node; the next maintenance pass carries it out.
-c N adds N instances (N < 0 removes -N), -s N sets the count, -f removes
the instance with that node id or address. Counts are clamped to the node's
scaling min and max, with a warning.`,
		Example: `  occopus scale -i 1fcb2f27-2abd-46ec-8c5f-5e8f2e116757 -n receiver -c 1
  occopus scale -i 1fcb2f27-2abd-46ec-8c5f-5e8f2e116757 -n receiver -s 3
  occopus scale -i 1fcb2f27-2abd-46ec-8c5f-5e8f2e116757 -n receiver -f 172.17.0.5`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			given := 0
			for _, f := range []string{"changescale", "setscale", "filter"} {
				if cmd.Flags().Changed(f) {
					given++
				}
			}
			switch {
			case infraID == "" || node == "":
				return fmt.Errorf("-i ID and -n NODE are required")
			case given != 1:
				return fmt.Errorf("give exactly one of -c N, -s N and -f NODE_ID_OR_IP")
			case cmd.Flags().Changed("changescale") && change == 0:
				return fmt.Errorf("-c 0 changes nothing")
			case cmd.Flags().Changed("setscale") && set < 1:
				return fmt.Errorf("-s %d: a node has at least one instance", set)
			}
			s, err := e.session(ctx, false, nil)
			if err != nil {
				return err
			}
			defer s.Close()
			req := occopus.ScaleRequest{InfraID: infraID, Node: node, Change: change, Victim: victim}
			if cmd.Flags().Changed("setscale") {
				req.Set = &set
			}
			after, err := s.m.Scale(ctx, req)
			if err != nil {
				return unknownInfra(err)
			}
			if after.Clamped != "" {
				fmt.Fprintf(e.stderr, "warning: %s\n", after.Clamped)
			}
			fmt.Fprintf(e.stdout, "node %s of %s: target %d (min %d, max %d) after the next maintenance pass\n", node, infraID, after.Target, after.Min, after.Max)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&infraID, "infra_id", "i", "", "infrastructure id")
	f.StringVarP(&node, "node", "n", "", "node name")
	f.IntVarP(&change, "changescale", "c", 0, "add N instances (negative: remove)")
	f.IntVarP(&set, "setscale", "s", 0, "set the number of instances")
	f.StringVarP(&victim, "filter", "f", "", "remove the instance with this node id or address")
	return cmd
}

func newPlan(e *env) *cobra.Command {
	var infraID, format string
	cmd := &cobra.Command{
		Use:   "plan -i ID [INFRA_FILE]",
		Short: "Show what the next maintenance pass (or build -i with INFRA_FILE) would create and drop",
		Example: `  occopus plan -i 1fcb2f27-2abd-46ec-8c5f-5e8f2e116757
  occopus plan -i 1fcb2f27-2abd-46ec-8c5f-5e8f2e116757 infra-v2.yaml   # what build -i would do`,
		Args: atMost("INFRA_FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if infraID == "" {
				return fmt.Errorf("-i ID is required")
			}
			if format != "text" && format != "json" {
				return fmt.Errorf("--format %q: want text or json", format)
			}
			var in *descr.Infra
			if len(args) == 1 {
				var err error
				if in, err = descr.LoadInfra(args[0], e.loadOptions()); err != nil {
					return e.descrFailure(err)
				}
			}
			s, err := e.session(ctx, false, nil)
			if err != nil {
				return err
			}
			defer s.Close()
			actions, err := s.m.Plan(ctx, infraID, in)
			if err != nil {
				var des descr.Errors
				if errors.As(err, &des) {
					return e.descrFailure(err)
				}
				return unknownInfra(err)
			}
			if format == "json" {
				if actions == nil {
					actions = []occopus.Action{}
				}
				return writeJSON(e.stdout, actions)
			}
			if len(actions) == 0 {
				fmt.Fprintln(e.stdout, "nothing to do")
			}
			for _, a := range actions {
				fmt.Fprintln(e.stdout, a)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&infraID, "infra_id", "i", "", "infrastructure id")
	cmd.Flags().StringVar(&format, "format", "text", "text or json")
	return cmd
}
