// Package occoredis reads what Occopus 1.10 keeps in its Redis (see
// ../shared/occopus-1.10-notes.md and the captured store in
// ../shared/occopus-1.10-redis-dump): node definitions, infrastructure
// descriptions, the instances of each node and pending scaling requests.
// It only reads: SCAN, TYPE, GET and HGETALL.
package occoredis

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.yaml.in/yaml/v3"
)

// Address is where Occopus's Redis is: host:port, the uds db and the
// altdbs of node definitions and infrastructures (Occopus's defaults: 1
// and 10).
type Address struct {
	Addr               string
	DB                 int
	NodeDefDB, InfraDB int
	Password           string
}

// ParseAddress reads HOST:PORT[/DB] (a redis:// URL too).
func ParseAddress(s string) (Address, error) {
	a := Address{NodeDefDB: 1, InfraDB: 10}
	rest := strings.TrimPrefix(s, "redis://")
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		cred := rest[:at]
		rest = rest[at+1:]
		if _, pass, ok := strings.Cut(cred, ":"); ok {
			a.Password = pass
		} else {
			a.Password = cred
		}
	}
	hostport, db, hasDB := strings.Cut(rest, "/")
	if hostport == "" || !strings.Contains(hostport, ":") {
		return a, fmt.Errorf("redis address %q: want HOST:PORT[/DB]", redactURL(s))
	}
	if _, err := strconv.Atoi(hostport[strings.LastIndex(hostport, ":")+1:]); err != nil {
		return a, fmt.Errorf("redis address %q: the port is not a number", redactURL(s))
	}
	a.Addr = hostport
	if hasDB && db != "" {
		n, err := strconv.Atoi(db)
		if err != nil || n < 0 {
			return a, fmt.Errorf("redis address %q: the database %q is not a number", redactURL(s), db)
		}
		a.DB = n
	}
	return a, nil
}

// redactURL keeps a password given in a URL out of messages.
func redactURL(s string) string {
	if at := strings.LastIndex(s, "@"); at >= 0 {
		scheme := ""
		if strings.HasPrefix(s, "redis://") {
			scheme = "redis://"
		}
		return scheme + "***@" + s[at+1:]
	}
	return s
}

// Store is what was read.
type Store struct {
	// NodeDefs maps USER -> node type -> the YAML list of implementations.
	NodeDefs map[string]map[string]string
	Infras   []*Infra
}

// Infra is one of Occopus's infrastructures.
type Infra struct {
	User, ID string
	Name     string
	UserID   string
	// Variables are the infrastructure's variables.
	Variables map[string]any
	Nodes     []Node
	// Dependencies are [dependent, dependency] node names with mappings.
	Dependencies []Dependency
	// Instances per node name, in node id order.
	Instances map[string][]Instance
	// Requests are the pending scaling requests.
	Requests []Request
	// Suspended is Occopus's flag of a suspended infrastructure.
	Suspended bool
}

// Node is a node of a description.
type Node struct {
	Name, Type string
	Min, Max   *int
	Variables  map[string]any
	Filter     map[string]any
	Attributes map[string]any
}

// Dependency is an edge of the description.
type Dependency struct {
	From, To string
	Mappings []any
}

// Instance is one node instance Occopus made.
type Instance struct {
	NodeID string
	// InstanceID is Occopus's instance_id as stored: a string, or the
	// Python repr of a dict (docker).
	InstanceID any
	// Resource is the resolved resource section it was made with.
	Resource  map[string]any
	StartedAt time.Time
}

// Request is one pending scaling request (Occopus's :scaling hash).
type Request struct {
	Node string
	// Count is set for node-count-NAME (an absolute count).
	Count *int
	// Create is true for node-create:NAME:UUID (one more).
	Create bool
	// Victim is the node id or address of node-destroy:NAME:UUID; "" means
	// any one.
	Destroy bool
	Victim  string
	Key     string
}

// Read reads every user's node definitions and infrastructures (one user's
// when user is not empty).
func Read(ctx context.Context, a Address, user string) (*Store, error) {
	out := &Store{NodeDefs: map[string]map[string]string{}}
	nd := client(a, a.NodeDefDB)
	defer nd.Close()
	keys, err := scan(ctx, nd, user)
	if err != nil {
		return nil, fmt.Errorf("node definitions (db %d): %w", a.NodeDefDB, err)
	}
	for _, k := range keys {
		u, typ, ok := strings.Cut(k, "@")
		if !ok || strings.Contains(typ, ":") {
			continue
		}
		v, err := nd.Get(ctx, k).Result()
		if err != nil {
			return nil, fmt.Errorf("node definition %s (db %d): %w", k, a.NodeDefDB, err)
		}
		if out.NodeDefs[u] == nil {
			out.NodeDefs[u] = map[string]string{}
		}
		out.NodeDefs[u][typ] = v
	}
	ic := client(a, a.InfraDB)
	defer ic.Close()
	keys, err = scan(ctx, ic, user)
	if err != nil {
		return nil, fmt.Errorf("infrastructures (db %d): %w", a.InfraDB, err)
	}
	for _, k := range keys {
		u, rest, ok := strings.Cut(k, "@")
		if !ok {
			continue
		}
		id, ok := strings.CutSuffix(rest, ":description")
		if !ok {
			continue
		}
		in, err := readInfra(ctx, ic, u, id)
		if err != nil {
			return nil, fmt.Errorf("infrastructure %s (db %d): %w", id, a.InfraDB, err)
		}
		out.Infras = append(out.Infras, in)
	}
	return out, nil
}

// client opens one database; db < 0 is the uds db itself (an altdb
// Occopus was configured without).
func client(a Address, db int) *goredis.Client {
	if db < 0 {
		db = a.DB
	}
	return goredis.NewClient(&goredis.Options{Addr: a.Addr, DB: db, Password: a.Password, MaxRetries: 1})
}

// maxKeys bounds what one read takes from a database.
const maxKeys = 100_000

func scan(ctx context.Context, c *goredis.Client, user string) ([]string, error) {
	pattern := "*@*"
	if user != "" {
		pattern = user + "@*"
	}
	var keys []string
	iter := c.Scan(ctx, 0, pattern, 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
		if len(keys) > maxKeys {
			return nil, fmt.Errorf("more than %d keys", maxKeys)
		}
	}
	if err := iter.Err(); err != nil {
		return nil, err
	}
	sort.Strings(keys)
	return keys, nil
}

func readInfra(ctx context.Context, c *goredis.Client, user, id string) (*Infra, error) {
	prefix := user + "@" + id
	raw, err := c.Get(ctx, prefix+":description").Result()
	if err != nil {
		return nil, err
	}
	in, err := ParseDescription(raw)
	if err != nil {
		return nil, err
	}
	in.User, in.ID = user, id
	in.Instances = map[string][]Instance{}
	for _, n := range in.Nodes {
		h, err := c.HGetAll(ctx, prefix+":state:"+n.Name).Result()
		if err != nil {
			return nil, fmt.Errorf("state of node %s: %w", n.Name, err)
		}
		ids := make([]string, 0, len(h))
		for k := range h {
			ids = append(ids, k)
		}
		sort.Strings(ids)
		for _, nodeID := range ids {
			inst, err := ParseInstance(nodeID, h[nodeID])
			if err != nil {
				return nil, fmt.Errorf("instance %s of node %s: %w", nodeID, n.Name, err)
			}
			in.Instances[n.Name] = append(in.Instances[n.Name], inst)
		}
	}
	sc, err := c.HGetAll(ctx, prefix+":scaling").Result()
	if err != nil {
		return nil, fmt.Errorf("scaling requests: %w", err)
	}
	in.Requests, err = ParseRequests(sc)
	return in, err
}

// ParseDescription reads Occopus's StaticDescription (YAML with Python
// object tags, which are only names here).
func ParseDescription(raw string) (*Infra, error) {
	var root yaml.Node
	if err := yaml.Unmarshal([]byte(raw), &root); err != nil {
		return nil, fmt.Errorf("description: %w", err)
	}
	stripTags(&root)
	var d struct {
		Name         string             `yaml:"name"`
		UserID       string             `yaml:"user_id"`
		Variables    map[string]any     `yaml:"variables"`
		Nodes        []map[string]any   `yaml:"nodes"`
		Dependencies [][]map[string]any `yaml:"dependencies"`
		Edges        []map[string]any   `yaml:"edges"`
		Suspended    bool               `yaml:"suspended"`
	}
	if err := root.Decode(&d); err != nil {
		return nil, fmt.Errorf("description: %w", err)
	}
	if d.Name == "" || len(d.Nodes) == 0 {
		return nil, fmt.Errorf("description: no name or no nodes")
	}
	in := &Infra{Name: d.Name, UserID: d.UserID, Variables: d.Variables, Suspended: d.Suspended}
	for i, n := range d.Nodes {
		name, _ := n["name"].(string)
		typ, _ := n["type"].(string)
		if name == "" || typ == "" {
			return nil, fmt.Errorf("description: nodes[%d] has no name or type", i)
		}
		nd := Node{Name: name, Type: typ}
		nd.Variables, _ = n["variables"].(map[string]any)
		nd.Filter, _ = n["filter"].(map[string]any)
		nd.Attributes, _ = n["attributes"].(map[string]any)
		if s, ok := n["scaling"].(map[string]any); ok {
			nd.Min, nd.Max = intPtr(s["min"]), intPtr(s["max"])
		}
		in.Nodes = append(in.Nodes, nd)
	}
	// Edges carry the mappings; dependencies are [dependent, dependee].
	mappings := map[[2]string][]any{}
	for _, e := range d.Edges {
		from, _ := e["_Edge__dependent"].(map[string]any)
		to, _ := e["_Edge__dependee"].(map[string]any)
		ms, _ := e["_Edge__mappings"].([]any)
		if from != nil && to != nil && len(ms) > 0 {
			mappings[[2]string{fmt.Sprint(from["name"]), fmt.Sprint(to["name"])}] = ms
		}
	}
	for i, dep := range d.Dependencies {
		if len(dep) != 2 {
			return nil, fmt.Errorf("description: dependencies[%d] has %d ends, want 2", i, len(dep))
		}
		from, to := fmt.Sprint(dep[0]["name"]), fmt.Sprint(dep[1]["name"])
		in.Dependencies = append(in.Dependencies, Dependency{From: from, To: to, Mappings: mappings[[2]string{from, to}]})
	}
	return in, nil
}

func intPtr(v any) *int {
	if n, ok := v.(int); ok {
		return &n
	}
	return nil
}

// stripTags drops Python object tags so the mappings underneath decode.
func stripTags(n *yaml.Node) {
	if strings.HasPrefix(n.Tag, "!!python/") || (strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!")) {
		n.Tag = ""
	}
	if n.Alias != nil {
		stripTags(n.Alias)
	}
	for _, c := range n.Content {
		stripTags(c)
	}
}

// ParseInstance reads one entry of a :state:NODE hash.
func ParseInstance(nodeID, raw string) (Instance, error) {
	var root yaml.Node
	if err := yaml.Unmarshal([]byte(raw), &root); err != nil {
		return Instance{}, err
	}
	stripTags(&root)
	var d struct {
		NodeID     string         `yaml:"node_id"`
		InstanceID any            `yaml:"instance_id"`
		Start      float64        `yaml:"instance_start_time"`
		Resource   map[string]any `yaml:"resource"`
	}
	if err := root.Decode(&d); err != nil {
		return Instance{}, err
	}
	if d.NodeID != "" && d.NodeID != nodeID {
		return Instance{}, fmt.Errorf("the record says node_id %s", d.NodeID)
	}
	if d.Resource == nil {
		return Instance{}, fmt.Errorf("no resource section")
	}
	sec, frac := int64(d.Start), d.Start-float64(int64(d.Start))
	return Instance{NodeID: nodeID, InstanceID: d.InstanceID, Resource: d.Resource, StartedAt: time.Unix(sec, int64(frac*1e9)).UTC()}, nil
}

// ParseRequests reads the :scaling hash.
func ParseRequests(h map[string]string) ([]Request, error) {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []Request
	for _, k := range keys {
		v := strings.TrimSpace(h[k])
		switch {
		case strings.HasPrefix(k, "node-count-"):
			n, err := strconv.Atoi(v)
			if err != nil {
				return nil, fmt.Errorf("scaling request %s: count %q is not a number", k, v)
			}
			out = append(out, Request{Key: k, Node: strings.TrimPrefix(k, "node-count-"), Count: &n})
		case strings.HasPrefix(k, "node-create:"):
			node, _, _ := strings.Cut(strings.TrimPrefix(k, "node-create:"), ":")
			out = append(out, Request{Key: k, Node: node, Create: true})
		case strings.HasPrefix(k, "node-destroy:"):
			node, _, _ := strings.Cut(strings.TrimPrefix(k, "node-destroy:"), ":")
			out = append(out, Request{Key: k, Node: node, Destroy: true, Victim: v})
		default:
			return nil, fmt.Errorf("scaling request %s: unknown kind", k)
		}
	}
	return out, nil
}

// dockerID finds the container id in the Python repr of docker-py's
// create_container answer: {'Id': '345f…', 'Warnings': []}.
var dockerID = regexp.MustCompile(`['"]Id['"]\s*:\s*['"]([0-9a-f]{12,64})['"]`)

// BackendID is the id of the instance at its backend, by resource type;
// an error says why an instance cannot be taken over.
func BackendID(typ string, instanceID any) (string, error) {
	s, isString := instanceID.(string)
	switch typ {
	case "docker":
		if m := dockerID.FindStringSubmatch(fmt.Sprint(instanceID)); m != nil {
			return m[1], nil
		}
		if isString && regexp.MustCompile(`^[0-9a-f]{12,64}$`).MatchString(s) {
			return s, nil
		}
		return "", fmt.Errorf("docker instance_id %q holds no container id", cut(fmt.Sprint(instanceID)))
	case "ec2", "nova", "cloudsigma", "cloudbroker":
		if isString && s != "" && !strings.ContainsAny(s, "{}'\" ") {
			return s, nil
		}
		return "", fmt.Errorf("%s instance_id %q is not an id", typ, cut(fmt.Sprint(instanceID)))
	case "azure_vm", "azure_aci":
		return "", fmt.Errorf("%s instances are not taken over yet (Occopus's instance_id names a resource group and created resources, not one id)", typ)
	}
	return "", fmt.Errorf("resource type %q is not one Occopus 1.10 makes", typ)
}

func cut(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// DescriptionYAML writes the infrastructure back as the description a
// user of Occopus submitted: infra_name, user_id, variables, nodes with
// their scaling, filter, variables and attributes, dependencies with
// their mappings.
func (in *Infra) DescriptionYAML() ([]byte, error) {
	doc := &yaml.Node{Kind: yaml.MappingNode}
	add := func(m *yaml.Node, k string, v any) error {
		var vn yaml.Node
		if err := vn.Encode(v); err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
		m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: k}, &vn)
		return nil
	}
	if err := add(doc, "infra_name", in.Name); err != nil {
		return nil, err
	}
	if in.UserID != "" {
		if err := add(doc, "user_id", in.UserID); err != nil {
			return nil, err
		}
	}
	if len(in.Variables) > 0 {
		if err := add(doc, "variables", in.Variables); err != nil {
			return nil, err
		}
	}
	nodes := &yaml.Node{Kind: yaml.SequenceNode}
	for _, n := range in.Nodes {
		m := &yaml.Node{Kind: yaml.MappingNode}
		_ = add(m, "name", n.Name)
		_ = add(m, "type", n.Type)
		if n.Min != nil || n.Max != nil {
			s := map[string]int{}
			if n.Min != nil {
				s["min"] = *n.Min
			}
			if n.Max != nil {
				s["max"] = *n.Max
			}
			_ = add(m, "scaling", s)
		}
		for _, kv := range []struct {
			k string
			v map[string]any
		}{{"filter", n.Filter}, {"variables", n.Variables}, {"attributes", n.Attributes}} {
			if len(kv.v) > 0 {
				if err := add(m, kv.k, kv.v); err != nil {
					return nil, fmt.Errorf("node %s: %w", n.Name, err)
				}
			}
		}
		nodes.Content = append(nodes.Content, m)
	}
	doc.Content = append(doc.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: "nodes"}, nodes)
	if len(in.Dependencies) > 0 {
		var deps []any
		for _, d := range in.Dependencies {
			if len(d.Mappings) == 0 {
				deps = append(deps, []string{d.From, d.To})
				continue
			}
			deps = append(deps, map[string]any{"connection": []string{d.From, d.To}, "mappings": d.Mappings})
		}
		if err := add(doc, "dependencies", deps); err != nil {
			return nil, err
		}
	}
	return yaml.Marshal(doc)
}
