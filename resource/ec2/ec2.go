// Package ec2 runs nodes on EC2-compatible clouds (`type: ec2`): Amazon EC2
// itself and any cloud with an EC2 Query API (OpenStack ec2-api,
// Eucalyptus, ...), through aws-sdk-go-v2.
//
// Resource section keys (as in Occopus):
//
//	type:               ec2
//	endpoint:           URL of the EC2 interface (https://ec2.eu-west-1.amazonaws.com,
//	                    http://cloud.example:8773/services/Cloud, ...)
//	regionname:         region (also the signing region)
//	image_id:           AMI / image id
//	instance_type:      flavour
//	key_name:           key pair (optional)
//	security_group_ids: list of security group ids (optional)
//	subnet_id:          subnet (optional)
//	tags:               map of extra tags (optional); the occopus:* tags win
//	name:               name of the resource, used to select auth_data
//
// Credentials come from the selected auth_data entry: accesskey and
// secretkey.
//
// Every instance is tagged occopus:infra_id, occopus:node_id,
// occopus:node_name, occopus:store_id (when the store has an id) and Name
// (the node name unless tags gives one), and is
// created with ClientToken derived from the node id, so a RunInstances
// retried after a lost answer never makes a second VM.
//
// Every HTTP request waits for the client-side rate limit of its host
// (resource.Config.Limiter, shared by the handlers of one Manager), and
// every API call goes through a cloudapi.Caller, which retries throttling
// and transient errors, bounds each attempt and names what failed in a
// cloudapi.Error; the SDK's own retryer is off so that the retries are
// ours, counted and bounded in one place.
package ec2

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/internal/cloudapi"
	"github.com/occopus-go/occopus/resource"
)

// Tags put on every instance, so List/Find can recover them after a
// crash, and ListAll can tell this store's from another's.
const (
	TagInfraID  = "occopus:infra_id"
	TagNodeID   = "occopus:node_id"
	TagNodeName = "occopus:node_name"
	TagStoreID  = "occopus:store_id"
)

// MaxUserData is EC2's limit on user data before base64 encoding.
const MaxUserData = 16 * 1024

// DefaultFinishGrace is how long a RunInstances under way is waited for
// after its caller gave up (see Create).
const DefaultFinishGrace = 10 * time.Second

// notFoundGrace is how long after our own RunInstances an
// InvalidInstanceID.NotFound is read as EC2's eventual consistency (the
// instance is not visible to describes yet) rather than as "gone".
const notFoundGrace = 2 * time.Minute

// Handler runs node instances on one EC2 endpoint with one set of
// credentials. It is safe for concurrent use.
type Handler struct {
	cli      *ec2.Client
	endpoint string
	defaults map[string]any // the section New got: Create's when a spec has none
	log      *slog.Logger
	cloud    *cloudapi.Caller
	grace    time.Duration
	// finishGrace: DefaultFinishGrace; tests shorten it.
	finishGrace time.Duration

	mu      sync.Mutex
	created map[string]time.Time // instance id → when our RunInstances returned it
}

var (
	_ resource.Handler = (*Handler)(nil)
	_ resource.Lister  = (*Handler)(nil)
	_ resource.Finder  = (*Handler)(nil)
	_ resource.Sweeper = (*Handler)(nil)
)

// New builds a Handler from a resource section and its auth_data entry. It
// does not contact the endpoint.
func New(cfg resource.Config) (resource.Handler, error) {
	return newHandler(cfg, nil)
}

// newHandler builds the handler; base sends its HTTP requests (nil: the
// SDK's default transport).
func newHandler(cfg resource.Config, base http.RoundTripper) (*Handler, error) {
	// The instance keys are Create's to decode and check, per node.
	var set Connection
	derr := descr.Decode("resource", cfg.Resource, &set)
	endpoint := set.Endpoint
	if err := checkEndpoint(endpoint); err != nil {
		return nil, err
	}
	if set.Region == "" {
		return nil, fmt.Errorf("ec2: resource with endpoint %s: regionname is missing", endpoint)
	}
	if derr != nil {
		return nil, fmt.Errorf("ec2: %w", derr)
	}
	if cfg.Auth == nil {
		return nil, fmt.Errorf("ec2: no credentials for endpoint %s: no resource entry of type ec2 in auth_data matches it (it needs auth_data with accesskey and secretkey)", endpoint)
	}
	var cred Credentials
	if err := descr.Decode("auth_data", cfg.Auth, &cred); err != nil {
		return nil, fmt.Errorf("ec2: credentials for endpoint %s: %w", endpoint, err)
	}
	var missing []string
	if cred.AccessKey == "" {
		missing = append(missing, "accesskey")
	}
	if cred.SecretKey == "" {
		missing = append(missing, "secretkey")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("ec2: credentials for endpoint %s: auth_data lacks %s", endpoint, strings.Join(missing, " and "))
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("backend", "ec2", "endpoint", endpoint, "region", set.Region)
	if base == nil {
		base = awshttp.NewBuildableClient().GetTransport()
	}
	opts := ec2.Options{
		Region:       set.Region,
		BaseEndpoint: aws.String(endpoint),
		Credentials:  aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(cred.AccessKey, string(cred.SecretKey), "")),
		HTTPClient:   &http.Client{Transport: &cloudapi.Transport{Base: base, Limiter: cfg.Limiter}},
		// Retries are the Caller's: the SDK must not retry behind our
		// back (RetryMaxAttempts stays 0 so nothing wraps this).
		Retryer: aws.NopRetryer{},
	}
	return &Handler{
		cli:      ec2.New(opts),
		endpoint: endpoint,
		defaults: cfg.Resource,
		log:      log,
		cloud: &cloudapi.Caller{Provider: "ec2", Endpoint: endpoint, Classify: classify,
			Secrets: []string{string(cred.SecretKey)}, Log: log},
		grace: notFoundGrace, finishGrace: DefaultFinishGrace,
		created: map[string]time.Time{},
	}, nil
}

// checkEndpoint accepts an absolute http(s) URL; anything else (such as
// the tutorials' "replace_with_endpoint_of_ec2_interface_of_your_cloud")
// is an error naming the value.
func checkEndpoint(ep string) error {
	if ep == "" {
		return errors.New("ec2: resource section has no endpoint")
	}
	u, err := url.Parse(ep)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("ec2: endpoint %q is not an http(s) URL of an EC2 interface (e.g. https://ec2.eu-west-1.amazonaws.com)", ep)
	}
	return nil
}

// ---- Create ----

// Create starts one instance for spec.NodeID, or returns the one an
// earlier call made (ClientToken).
func (h *Handler) Create(ctx context.Context, spec resource.Spec) (resource.Handle, error) {
	what := "create node " + spec.NodeName
	in, err := h.runInput(spec)
	if err != nil {
		return resource.Handle{}, h.cloud.Fail(what, "", err)
	}
	var out *ec2.RunInstancesOutput
	err = h.cloud.Do(ctx, what, "", func(actx context.Context) (err error) {
		// An attempt under way is not dropped at once when ctx ends
		// (Ctrl-C of a build): EC2 carries out a request it received, and
		// an instance that appeared after the caller's clean-up looked for
		// it was left running (the chaos suite found one). The answer is
		// waited for a while (finishGrace), so the caller can find and
		// remove the instance; a hung endpoint still lets it go. The
		// Caller retries nothing once ctx has ended.
		rctx, cancel := context.WithCancel(context.WithoutCancel(actx))
		defer cancel()
		done := make(chan struct{})
		defer close(done)
		go func() {
			select {
			case <-done:
				return
			case <-actx.Done():
			}
			if ctx.Err() == nil {
				cancel() // the attempt's own timeout
				return
			}
			t := time.NewTimer(h.finishGrace)
			defer t.Stop()
			select {
			case <-done:
			case <-t.C:
				cancel()
			}
		}()
		out, err = h.cli.RunInstances(rctx, in)
		return err
	})
	if code, _, _ := apiError(err); code == "IdempotentParameterMismatch" {
		// The node's instance exists but was asked for with other
		// parameters (a re-rendered template): it is still the node's
		// instance, and a second one must not be made.
		hd, found, ferr := h.Find(ctx, spec.InfraID, spec.NodeID)
		if ferr == nil && found {
			h.log.Warn("instance of this node exists with other parameters; adopting it", "node", spec.NodeName, "node_id", spec.NodeID, "instance", hd.ID)
			return hd, nil
		}
	}
	if err != nil {
		return resource.Handle{}, err
	}
	if out == nil || len(out.Instances) == 0 || aws.ToString(out.Instances[0].InstanceId) == "" {
		return resource.Handle{}, h.cloud.Fail(what, "", errors.New("RunInstances answered without an instance"))
	}
	id := aws.ToString(out.Instances[0].InstanceId)
	h.mu.Lock()
	if _, seen := h.created[id]; !seen {
		h.created[id] = time.Now()
	}
	h.mu.Unlock()
	h.log.Info("instance created", "node", spec.NodeName, "node_id", spec.NodeID, "instance", id)
	return resource.Handle{ID: id}, nil
}

// runInput builds RunInstances' parameters; every check that can fail
// without the cloud happens here, before any call.
func (h *Handler) runInput(spec resource.Spec) (*ec2.RunInstancesInput, error) {
	res := spec.Resource
	if res == nil {
		res = h.defaults
	}
	var set Instance
	derr := descr.Decode("resource", res, &set)
	if spec.NodeID == "" || spec.InfraID == "" {
		return nil, errors.New("spec has no infra id or node id")
	}
	if set.ImageID == "" || set.InstanceType == "" {
		return nil, errors.New("resource section needs image_id and instance_type")
	}
	if n := len(spec.Context.UserData); n > MaxUserData {
		return nil, fmt.Errorf("user data is %d bytes, EC2 accepts at most %d (16 KiB) before base64 encoding; shorten the cloud-init template", n, MaxUserData)
	}
	if derr != nil {
		return nil, derr
	}
	in := &ec2.RunInstancesInput{
		ImageId:          aws.String(set.ImageID),
		InstanceType:     types.InstanceType(set.InstanceType),
		MinCount:         aws.Int32(1),
		MaxCount:         aws.Int32(1),
		ClientToken:      aws.String(clientToken(spec.InfraID, spec.NodeID)),
		SecurityGroupIds: set.SecurityGroupIDs,
	}
	if spec.Context.UserData != "" {
		in.UserData = aws.String(base64.StdEncoding.EncodeToString([]byte(spec.Context.UserData)))
	}
	if set.KeyName != "" {
		in.KeyName = aws.String(set.KeyName)
	}
	if set.SubnetID != "" {
		in.SubnetId = aws.String(set.SubnetID)
	}
	tags := make(map[string]string, len(set.Tags)+4)
	for k, v := range set.Tags {
		tags[k] = v
	}
	if _, ok := tags["Name"]; !ok {
		tags["Name"] = spec.NodeName
	}
	tags[TagInfraID] = spec.InfraID
	tags[TagNodeID] = spec.NodeID
	tags[TagNodeName] = spec.NodeName
	delete(tags, TagStoreID) // the section's tags must not claim a store
	if spec.StoreID != "" {
		tags[TagStoreID] = spec.StoreID
	}
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	ts := types.TagSpecification{ResourceType: types.ResourceTypeInstance}
	for _, k := range keys {
		ts.Tags = append(ts.Tags, types.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	in.TagSpecifications = []types.TagSpecification{ts}
	return in, nil
}

// Label tags an instance made by someone else (taken over) with the tags
// Create puts on its own (its Name tag is left as it is), so that List,
// Find and ListAll see it as ours. CreateTags overwrites a tag of the same
// key and is idempotent.
func (h *Handler) Label(ctx context.Context, hd resource.Handle, spec resource.Spec) error {
	if hd.ID == "" || spec.InfraID == "" || spec.NodeID == "" {
		return errors.New("ec2: label: handle has no instance id or spec no infra id or node id")
	}
	tags := []types.Tag{
		{Key: aws.String(TagInfraID), Value: aws.String(spec.InfraID)},
		{Key: aws.String(TagNodeID), Value: aws.String(spec.NodeID)},
		{Key: aws.String(TagNodeName), Value: aws.String(spec.NodeName)},
	}
	if spec.StoreID != "" {
		tags = append(tags, types.Tag{Key: aws.String(TagStoreID), Value: aws.String(spec.StoreID)})
	}
	what := "tag instance " + hd.ID
	err := h.cloud.Do(ctx, what, "", func(ctx context.Context) error {
		_, err := h.cli.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{hd.ID}, Tags: tags})
		return err
	})
	if err != nil && isNotFound(err) {
		return fmt.Errorf("ec2: %s (%s): %w", what, h.endpoint, resource.ErrNotFound)
	}
	return err
}

// clientToken is the idempotency key of RunInstances: the node id when it
// fits EC2's 64 ASCII characters, else a digest of infra and node id.
func clientToken(infraID, nodeID string) string {
	ok := len(nodeID) <= 64
	for i := 0; ok && i < len(nodeID); i++ {
		ok = nodeID[i] > ' ' && nodeID[i] < 0x7f
	}
	if ok {
		return nodeID
	}
	sum := sha256.Sum256([]byte(infraID + "\x00" + nodeID))
	return "occopus-" + hex.EncodeToString(sum[:])[:56]
}

// ---- State, Addresses, Destroy ----

// describe returns the instance, or resource.ErrNotFound.
func (h *Handler) describe(ctx context.Context, what, id string) (*types.Instance, error) {
	var out *ec2.DescribeInstancesOutput
	err := h.cloud.Do(ctx, what, "", func(ctx context.Context) (err error) {
		out, err = h.cli.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
		return err
	})
	if err != nil {
		if isNotFound(err) {
			return nil, h.notFound(what, id)
		}
		return nil, err
	}
	for _, r := range out.Reservations {
		for i := range r.Instances {
			if aws.ToString(r.Instances[i].InstanceId) == id {
				return &r.Instances[i], nil
			}
		}
	}
	return nil, h.notFound(what, id)
}

// errNotVisible is a NotFound for an instance we created moments ago.
var errNotVisible = errors.New("instance not visible yet")

func (h *Handler) notFound(what, id string) error {
	h.mu.Lock()
	t, ours := h.created[id]
	h.mu.Unlock()
	if ours && time.Since(t) < h.grace {
		return errNotVisible
	}
	return fmt.Errorf("ec2: %s (%s): instance %s: %w", what, h.endpoint, id, resource.ErrNotFound)
}

// State maps EC2's instance state.
func (h *Handler) State(ctx context.Context, hd resource.Handle) (resource.State, error) {
	inst, err := h.describe(ctx, "state of instance "+hd.ID, hd.ID)
	if errors.Is(err, errNotVisible) {
		return resource.StatePending, nil
	}
	if err != nil {
		return resource.StateUnknown, err
	}
	return mapState(inst.State), nil
}

func mapState(s *types.InstanceState) resource.State {
	if s == nil {
		return resource.StateUnknown
	}
	switch s.Name {
	case types.InstanceStateNamePending:
		return resource.StatePending
	case types.InstanceStateNameRunning:
		return resource.StateRunning
	case types.InstanceStateNameShuttingDown, types.InstanceStateNameTerminated,
		types.InstanceStateNameStopping, types.InstanceStateNameStopped:
		return resource.StateShutdown
	}
	return resource.StateUnknown
}

// Addresses reports the public address (the private one when there is no
// public one) and the private address. A terminated or terminating
// instance has none: ErrNotFound.
func (h *Handler) Addresses(ctx context.Context, hd resource.Handle) (resource.Addresses, error) {
	what := "addresses of instance " + hd.ID
	inst, err := h.describe(ctx, what, hd.ID)
	if errors.Is(err, errNotVisible) {
		return resource.Addresses{}, nil
	}
	if err != nil {
		return resource.Addresses{}, err
	}
	if st := stateName(inst); st == types.InstanceStateNameTerminated || st == types.InstanceStateNameShuttingDown {
		return resource.Addresses{}, fmt.Errorf("ec2: %s (%s): instance is %s: %w", what, h.endpoint, st, resource.ErrNotFound)
	}
	a := resource.Addresses{Private: aws.ToString(inst.PrivateIpAddress), Public: aws.ToString(inst.PublicIpAddress)}
	if a.Public == "" {
		a.Public = a.Private
	}
	return a, nil
}

// Destroy terminates the instance. Already gone is success; an instance
// we created moments ago and EC2 does not show yet is an error (try again),
// never a silent success that would leak it.
func (h *Handler) Destroy(ctx context.Context, hd resource.Handle) error {
	what := "destroy instance " + hd.ID
	err := h.cloud.Do(ctx, what, "", func(ctx context.Context) error {
		_, err := h.cli.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{hd.ID}})
		if err != nil && isNotFound(err) && errors.Is(h.notFound(what, hd.ID), errNotVisible) {
			return &cloudapi.Retryable{Err: err}
		}
		return err
	})
	if err != nil && isNotFound(err) {
		if errors.Is(h.notFound(what, hd.ID), errNotVisible) {
			return fmt.Errorf("%w (created moments ago and not visible at the endpoint yet; try again)", err)
		}
		return nil
	}
	if err != nil {
		return err
	}
	h.mu.Lock()
	delete(h.created, hd.ID)
	h.mu.Unlock()
	h.log.Info("instance terminated", "instance", hd.ID)
	return nil
}

// ---- List, Find ----

// live are the states of instances that still exist for the engine.
var live = []string{"pending", "running", "stopping", "stopped"}

// List finds every live instance tagged with the infra id.
func (h *Handler) List(ctx context.Context, infraID string) ([]resource.Owned, error) {
	insts, err := h.search(ctx, "list infrastructure "+infraID, map[string]string{TagInfraID: infraID})
	if err != nil {
		return nil, err
	}
	return owned(insts), nil
}

// ListAll finds every live instance of the endpoint and region tagged
// with an infra id (EC2's tag-key filter), whoever made it.
func (h *Handler) ListAll(ctx context.Context) ([]resource.Owned, error) {
	insts, err := h.searchFilters(ctx, "list tagged instances", []types.Filter{{Name: aws.String("tag-key"), Values: []string{TagInfraID}}}, nil)
	if err != nil {
		return nil, err
	}
	out := owned(insts)
	// An instance tagged with an infra id but no node id (by hand) is
	// nothing a store could account for.
	return slices.DeleteFunc(out, func(o resource.Owned) bool { return o.InfraID == "" || o.NodeID == "" }), nil
}

func owned(insts []types.Instance) []resource.Owned {
	out := make([]resource.Owned, 0, len(insts))
	for _, in := range insts {
		t := tagMap(in.Tags)
		out = append(out, resource.Owned{
			Handle:   resource.Handle{ID: aws.ToString(in.InstanceId)},
			InfraID:  t[TagInfraID],
			NodeID:   t[TagNodeID],
			NodeName: t[TagNodeName],
			StoreID:  t[TagStoreID],
		})
	}
	return out
}

// Find finds the live instance made for one node id.
func (h *Handler) Find(ctx context.Context, infraID, nodeID string) (resource.Handle, bool, error) {
	insts, err := h.search(ctx, "find node "+nodeID, map[string]string{TagInfraID: infraID, TagNodeID: nodeID})
	if err != nil || len(insts) == 0 {
		return resource.Handle{}, false, err
	}
	return resource.Handle{ID: aws.ToString(insts[0].InstanceId)}, true, nil
}

func (h *Handler) search(ctx context.Context, what string, tags map[string]string) ([]types.Instance, error) {
	var filters []types.Filter
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		filters = append(filters, types.Filter{Name: aws.String("tag:" + k), Values: []string{tags[k]}})
	}
	return h.searchFilters(ctx, what, filters, tags)
}

// searchFilters pages through the live instances that pass the filters
// and have the tags, at most resource.MaxSweep of them.
func (h *Handler) searchFilters(ctx context.Context, what string, extra []types.Filter, tags map[string]string) ([]types.Instance, error) {
	filters := append([]types.Filter{{Name: aws.String("instance-state-name"), Values: live}}, extra...)
	var all []types.Instance
	var token *string
	for {
		in := &ec2.DescribeInstancesInput{Filters: filters, NextToken: token}
		var out *ec2.DescribeInstancesOutput
		if err := h.cloud.Do(ctx, what, "", func(ctx context.Context) (err error) {
			out, err = h.cli.DescribeInstances(ctx, in)
			return err
		}); err != nil {
			return nil, err
		}
		for _, r := range out.Reservations {
			for _, inst := range r.Instances {
				// Filters are the server's business, but an EC2-compatible
				// cloud that ignores some must not make us adopt strangers.
				if !matches(inst, tags) {
					continue
				}
				if len(all) == resource.MaxSweep {
					h.log.Warn("more instances than one listing reads; the rest wait for a later one", "what", what, "max", resource.MaxSweep)
					return all, nil
				}
				all = append(all, inst)
			}
		}
		token = out.NextToken
		if aws.ToString(token) == "" {
			return all, nil
		}
	}
}

func matches(in types.Instance, want map[string]string) bool {
	st := stateName(&in)
	if st == types.InstanceStateNameTerminated || st == types.InstanceStateNameShuttingDown {
		return false
	}
	t := tagMap(in.Tags)
	for k, v := range want {
		if t[k] != v {
			return false
		}
	}
	return true
}

// ---- small helpers ----

func stateName(in *types.Instance) types.InstanceStateName {
	if in == nil || in.State == nil {
		return ""
	}
	return in.State.Name
}

func tagMap(tags []types.Tag) map[string]string {
	m := make(map[string]string, len(tags))
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}
