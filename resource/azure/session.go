package azure

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v7"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/containerinstance/armcontainerinstance/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v7"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"

	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/internal/cloudapi"
	"github.com/occopus-go/occopus/resource"
)

// Defaults of the waits.
const (
	// DefaultPollEvery is the wait between polls of a long-running
	// operation when ARM sends no Retry-After (the SDK's default is 30 s,
	// too slow for a build that waits on several operations in a row).
	DefaultPollEvery = 2 * time.Second
	// DefaultOperationLimit bounds the wait for one long-running operation.
	DefaultOperationLimit = 20 * time.Minute
	// maxRetryAfter caps the wait ARM asks for, below the per-attempt
	// timeout of the Caller.
	maxRetryAfter = 30 * time.Second
	// defaultAttempts: at 30 % throttling six tries still fail one call in
	// 1,400, and a VM takes a few dozen calls.
	defaultAttempts = 10
	// maxPages bounds a listing (ARM pages hold up to 1,000 resources).
	maxPages = 100
)

// Options tune a Session; the zero value is what production uses.
type Options struct {
	// Base sends the HTTP requests; nil is a clone of
	// http.DefaultTransport, which trusts the system store. Tests give a
	// transport that trusts their fake's CA.
	Base http.RoundTripper
	// Authority is the Entra ID authority host; "" is
	// $AZURE_AUTHORITY_HOST, else the public cloud's.
	Authority string
	// PollEvery is the wait between polls of a long-running operation
	// when ARM sends no Retry-After (default DefaultPollEvery).
	PollEvery time.Duration
	// OperationLimit bounds one long-running operation (default
	// DefaultOperationLimit).
	OperationLimit time.Duration
	// Sleep waits (polls, Retry-After, retry backoff); it must return
	// ctx.Err() early when ctx ends. nil: a timer.
	Sleep func(ctx context.Context, d time.Duration) error
	// Attempts per call (default 10).
	Attempts int
	// Secrets are scrubbed from errors and logs besides the client
	// secret (a VM's admin password).
	Secrets []string
}

// Session is one handler's connection to ARM: credential, clients and
// the Caller every call goes through. It is safe for concurrent use.
type Session struct {
	Provider      string // "azure_vm", "azure_aci": prefixes errors
	Endpoint      string // the ARM base URL
	Subscription  string
	ResourceGroup string
	Clouds        Clouds
	Log           *slog.Logger

	Groups          *armresources.ResourceGroupsClient
	Resources       *armresources.Client
	VNets           *armnetwork.VirtualNetworksClient
	Subnets         *armnetwork.SubnetsClient
	PublicIPs       *armnetwork.PublicIPAddressesClient
	NICs            *armnetwork.InterfacesClient
	NSGs            *armnetwork.SecurityGroupsClient
	VMs             *armcompute.VirtualMachinesClient
	Disks           *armcompute.DisksClient
	ContainerGroups *armcontainerinstance.ContainerGroupsClient

	caller    *cloudapi.Caller
	pollEvery time.Duration
	opLimit   time.Duration
	sleep     func(ctx context.Context, d time.Duration) error

	mu       sync.Mutex
	groupsOK map[string]bool // resource groups known to exist (lowercase)
	vnetLock map[string]*sync.Mutex
}

// NewSession builds the credential and the clients of one handler from
// its resource section and auth_data entry. It contacts nothing.
func NewSession(provider string, cfg resource.Config, o Options) (*Session, error) {
	var conn Connection
	derr := descr.Decode("resource", cfg.Resource, &conn)
	if conn.Endpoint == "" {
		return nil, fmt.Errorf("%s: the resource section has no endpoint (the Azure Resource Manager URL, https://management.azure.com)", provider)
	}
	if conn.ResourceGroup == "" {
		return nil, fmt.Errorf("%s: resource with endpoint %s has no resource_group", provider, conn.Endpoint)
	}
	if derr != nil {
		return nil, fmt.Errorf("%s: %w", provider, derr)
	}
	clouds, err := CloudsFor(conn.Endpoint, o.Authority)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", provider, err)
	}
	creds, err := credentialsFrom(provider, conn.Endpoint, cfg.Auth)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("backend", provider, "endpoint", clouds.Endpoint, "resource_group", conn.ResourceGroup)
	base := o.Base
	if base == nil {
		base = http.DefaultTransport.(*http.Transport).Clone()
	}
	// Every request, token requests too, waits for its host's rate limit.
	client := &http.Client{Transport: &cloudapi.Transport{Base: base, Limiter: cfg.Limiter}}
	// Retries are the Caller's, counted once: the SDK's own policy gives
	// up after three tries, which fails about a third of builds at 30 %
	// throttling.
	noRetry := policy.RetryOptions{MaxRetries: -1}
	telemetry := policy.TelemetryOptions{ApplicationID: "occopus-go"}
	cred, err := azidentity.NewClientSecretCredential(creds.TenantID, creds.ClientID, string(creds.ClientSecret), &azidentity.ClientSecretCredentialOptions{
		ClientOptions:            azcore.ClientOptions{Cloud: clouds.Entra, Transport: client, Retry: noRetry, Telemetry: telemetry},
		DisableInstanceDiscovery: clouds.DisableInstanceDiscovery,
	})
	if err != nil {
		return nil, fmt.Errorf("%s: credentials for endpoint %s: %v", provider, clouds.Endpoint, scrubOne(err.Error(), string(creds.ClientSecret)))
	}
	opts := &arm.ClientOptions{ClientOptions: azcore.ClientOptions{Cloud: clouds.ARM, Transport: client, Retry: noRetry, Telemetry: telemetry}}
	s := &Session{
		Provider: provider, Endpoint: clouds.Endpoint, Subscription: creds.SubscriptionID, ResourceGroup: conn.ResourceGroup,
		Clouds: clouds, Log: log,
		pollEvery: cmp.Or(o.PollEvery, DefaultPollEvery), opLimit: cmp.Or(o.OperationLimit, DefaultOperationLimit),
		sleep: o.Sleep, groupsOK: map[string]bool{}, vnetLock: map[string]*sync.Mutex{},
	}
	if s.sleep == nil {
		s.sleep = sleep
	}
	sub := creds.SubscriptionID
	var errs []error
	must := func(err error) { errs = append(errs, err) }
	var e error
	s.Groups, e = armresources.NewResourceGroupsClient(sub, cred, opts)
	must(e)
	s.Resources, e = armresources.NewClient(sub, cred, opts)
	must(e)
	s.VNets, e = armnetwork.NewVirtualNetworksClient(sub, cred, opts)
	must(e)
	s.Subnets, e = armnetwork.NewSubnetsClient(sub, cred, opts)
	must(e)
	s.PublicIPs, e = armnetwork.NewPublicIPAddressesClient(sub, cred, opts)
	must(e)
	s.NICs, e = armnetwork.NewInterfacesClient(sub, cred, opts)
	must(e)
	s.NSGs, e = armnetwork.NewSecurityGroupsClient(sub, cred, opts)
	must(e)
	s.VMs, e = armcompute.NewVirtualMachinesClient(sub, cred, opts)
	must(e)
	s.Disks, e = armcompute.NewDisksClient(sub, cred, opts)
	must(e)
	s.ContainerGroups, e = armcontainerinstance.NewContainerGroupsClient(sub, cred, opts)
	must(e)
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("%s: endpoint %s: %v", provider, clouds.Endpoint, err)
	}
	s.caller = &cloudapi.Caller{
		Provider: provider, Endpoint: clouds.Endpoint, Classify: classify,
		Policy:  cloudapi.Policy{Attempts: cmp.Or(o.Attempts, defaultAttempts), Sleep: s.sleep},
		Secrets: append([]string{string(creds.ClientSecret)}, o.Secrets...), Log: log,
	}
	return s, nil
}

func scrubOne(s, secret string) string {
	if secret == "" {
		return s
	}
	return strings.ReplaceAll(s, secret, cloudapi.Redacted)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Scrub removes the session's secrets from s.
func (s *Session) Scrub(text string) string { return s.caller.Scrub(text) }

// Fail is the error of a call refused before it was made.
func (s *Session) Fail(op, node string, err error) error { return s.caller.Fail(op, node, err) }

// Do runs one ARM call through the Caller: retries of throttling (after
// the Retry-After ARM asks for), 5xx and lost connections, a timeout per
// attempt, one *cloudapi.Error.
func (s *Session) Do(ctx context.Context, op, node string, fn func(ctx context.Context) error) error {
	return s.caller.Do(ctx, op, node, func(ctx context.Context) error {
		err := fn(ctx)
		if d := retryAfter(err); d > 0 {
			// The Caller's own backoff follows; this is the wait ARM
			// itself asked for, so the retry is not spent too early.
			_ = s.sleep(ctx, min(d, maxRetryAfter))
		}
		return err
	})
}

// Await runs a long-running operation: the call that starts it, then
// polls every PollEvery (or after the Retry-After ARM sends) until it
// ends, then its result, each step through the Caller. Cancelling ctx
// stops the wait at once.
func Await[T any](ctx context.Context, s *Session, op, node string, begin func(ctx context.Context) (*runtime.Poller[T], error)) (T, error) {
	var zero T
	var p *runtime.Poller[T]
	// The first answer may say when to look (Retry-After); the poller
	// keeps it to itself, so it is captured on the way.
	var last *http.Response
	if err := s.Do(ctx, op, node, func(ctx context.Context) (err error) {
		p, err = begin(policy.WithCaptureResponse(ctx, &last))
		return err
	}); err != nil {
		return zero, err
	}
	octx, cancel := context.WithTimeout(ctx, s.opLimit)
	defer cancel()
	polls := 0
	for !p.Done() {
		d := s.pollEvery
		if ra := headerDelay(last); ra > 0 {
			d = min(ra, maxRetryAfter)
		}
		if err := s.sleep(octx, d); err != nil {
			why := err
			if ctx.Err() == nil {
				why = fmt.Errorf("not done within %s (%d polls)", s.opLimit, polls)
			}
			return zero, s.caller.NewError(op, node, cloudapi.Class{Message: "waiting for the operation: " + why.Error()}, err)
		}
		polls++
		if err := s.Do(octx, op+" (poll)", node, func(ctx context.Context) error {
			resp, err := p.Poll(ctx)
			if err == nil {
				last = resp
			}
			return err
		}); err != nil {
			return zero, err
		}
	}
	var res T
	err := s.Do(ctx, op, node, func(ctx context.Context) (err error) {
		res, err = p.Result(ctx)
		return err
	})
	return res, err
}

// ---- errors ----

// Error is a failed call: the one error type of the cloud backends.
type Error = cloudapi.Error

// retryableCodes are ARM error codes worth another try whatever the
// status (a conflicting operation still running on the same resource).
var retryableCodes = map[string]bool{
	"AnotherOperationInProgress": true, "RetryableError": true, "OperationPreempted": true,
	"TooManyRequests": true, "ServerBusy": true, "InternalServerError": true,
}

// classify reads one failed SDK call for the Caller.
func classify(err error) cloudapi.Class {
	var re *azcore.ResponseError
	var af *azidentity.AuthenticationFailedError
	switch {
	case errors.As(err, &re):
		c := cloudapi.Class{Code: re.StatusCode, ProviderCode: re.ErrorCode}
		if re.StatusCode < 300 {
			// A long-running operation that ended Failed: the answer
			// was a 200 about it, no HTTP failure to report.
			c.Code = 0
		}
		code, msg := armError(re.RawResponse)
		c.ProviderCode = cmp.Or(c.ProviderCode, code)
		c.Message = msg
		if c.Message == "" && re.StatusCode != 0 && re.StatusCode != http.StatusOK {
			c.Message = fmt.Sprintf("HTTP %d %s without an ARM error in the answer", re.StatusCode, http.StatusText(re.StatusCode))
		}
		c.Endpoint = requestOf(re.RawResponse)
		c.NotFound = re.StatusCode == http.StatusNotFound
		// A failed long-running operation comes back as a 200 whose
		// body says Failed: the provider's final word.
		c.Retryable = cloudapi.RetryableStatus(re.StatusCode) || retryableCodes[c.ProviderCode]
		return c
	case errors.As(err, &af):
		c := cloudapi.Class{Message: "authentication failed"}
		if af.RawResponse != nil {
			c.Code = af.RawResponse.StatusCode
			c.Endpoint = requestOf(af.RawResponse)
			c.ProviderCode, c.Message = entraError(af.RawResponse)
			c.Retryable = cloudapi.RetryableStatus(c.Code)
		} else {
			c.Message = firstLine(af.Error())
			c.Retryable = lostConnection(err)
		}
		return c
	}
	return cloudapi.Class{Message: err.Error(), Retryable: lostConnection(err)}
}

// lostConnection: no answer came (reset, EOF, refused, a timeout). Every
// call of these backends is safe to repeat: PUT is create-or-update by
// name, DELETE of what is gone succeeds, the rest are reads.
func lostConnection(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	return cloudapi.Transient(err) || errors.Is(err, syscall.ECONNREFUSED) ||
		strings.Contains(err.Error(), "server closed") || strings.Contains(err.Error(), "connection refused")
}

// armError reads ARM's {"error": {"code", "message", "details"}} (also
// the body of a failed operation, {"status": "Failed", "error": ...}).
func armError(resp *http.Response) (code, msg string) {
	if resp == nil {
		return "", ""
	}
	body, err := runtime.Payload(resp)
	if err != nil || len(body) == 0 {
		return "", ""
	}
	type detail struct {
		Code    string   `json:"code"`
		Message string   `json:"message"`
		Details []detail `json:"details"`
	}
	var doc struct {
		Error *detail `json:"error"`
		detail
	}
	if json.Unmarshal(body, &doc) != nil {
		return "", firstLine(truncate(string(body), 300))
	}
	d := doc.Error
	if d == nil {
		d = &doc.detail
	}
	msg = d.Message
	for i, x := range d.Details {
		if i == 3 {
			msg += " (…)"
			break
		}
		if x.Message != "" && x.Message != msg {
			msg += " [" + cmp.Or(x.Code, "detail") + ": " + x.Message + "]"
		}
	}
	return d.Code, truncate(msg, 1000)
}

// entraError reads Entra ID's {"error", "error_description"}.
func entraError(resp *http.Response) (code, msg string) {
	body, err := runtime.Payload(resp)
	if err != nil {
		return "", ""
	}
	var doc struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if json.Unmarshal(body, &doc) != nil || doc.Error == "" {
		return "", fmt.Sprintf("HTTP %d from the Entra ID token endpoint", resp.StatusCode)
	}
	return doc.Error, truncate(firstLine(doc.Description), 500)
}

func requestOf(resp *http.Response) string {
	if resp == nil || resp.Request == nil {
		return ""
	}
	u := *resp.Request.URL
	u.RawQuery, u.Fragment = "", ""
	return resp.Request.Method + " " + u.String()
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(s)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// retryAfter is the wait a throttled (429) or busy (503) answer asks for.
func retryAfter(err error) time.Duration {
	var re *azcore.ResponseError
	if !errors.As(err, &re) || re.RawResponse == nil {
		return 0
	}
	if re.StatusCode != http.StatusTooManyRequests && re.StatusCode != http.StatusServiceUnavailable {
		return 0
	}
	return headerDelay(re.RawResponse)
}

// headerDelay reads retry-after-ms, x-ms-retry-after-ms and Retry-After
// (seconds or an HTTP date).
func headerDelay(resp *http.Response) time.Duration {
	if resp == nil {
		return 0
	}
	for _, h := range []string{"retry-after-ms", "x-ms-retry-after-ms"} {
		if v := resp.Header.Get(h); v != "" {
			if ms, err := strconv.Atoi(v); err == nil && ms > 0 {
				return time.Duration(ms) * time.Millisecond
			}
		}
	}
	v := resp.Header.Get("Retry-After")
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return time.Until(t)
	}
	return 0
}

// IsNotFound reports ARM's "no such resource" (or resource group).
func IsNotFound(err error) bool { return cloudapi.IsNotFound(err) }
