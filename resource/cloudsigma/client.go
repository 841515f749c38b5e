package cloudsigma

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"syscall"

	"github.com/occopus-go/occopus/internal/cloudapi"
)

// Bounds on what the client reads and sends.
const (
	// maxBody bounds one answer: a page of 100 servers is well under it.
	maxBody = 8 << 20
	// pageSize is the objects asked for per page of a listing, and
	// maxPages how many pages a listing may take (so 5000 objects).
	pageSize = 100
	maxPages = 50
	// maxUserData bounds the rendered cloud-init put into the server's
	// meta (our bound, well above any tutorial's).
	maxUserData = 256 << 10
)

// client speaks CloudSigma's API 2.0: JSON bodies, objects in
// {"objects": [...]} envelopes, actions as POST .../action/?do=NAME,
// errors as a JSON list of {error_type, error_point, error_message}.
type client struct {
	base     string // the endpoint, no trailing slash
	hc       *http.Client
	email    string
	password string
}

// apiError is an error answer of the API.
type apiError struct {
	Method, URL string
	Status      int
	// Type, Point and Message are those of the first error object;
	// Message is the trimmed body when the answer holds none (a proxy's
	// page).
	Type, Point, Message string
}

func (e *apiError) Error() string {
	msg := e.Message
	if e.Type != "" {
		msg = e.Type + ": " + msg
	}
	return fmt.Sprintf("%s %s: HTTP %d: %s", e.Method, e.URL, e.Status, msg)
}

// errorObject is one entry of CloudSigma's error list.
type errorObject struct {
	Type    string `json:"error_type"`
	Point   string `json:"error_point"`
	Message string `json:"error_message"`
}

// listMeta is the meta of a paginated listing.
type listMeta struct {
	Limit      int `json:"limit"`
	Offset     int `json:"offset"`
	TotalCount int `json:"total_count"`
}

// envelope is the {"objects": [...]} wrapping of creations, clones and
// listings.
type envelope[T any] struct {
	Meta    *listMeta `json:"meta,omitempty"`
	Objects []T       `json:"objects"`
}

// do sends one request: path below the endpoint (with its trailing
// slash), query, a JSON body (nil: none) and decodes a 2xx answer into
// out (nil: discarded). Failures are *apiError (an answer) or the
// transport's error (none).
func (c *client) do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode %s %s: %w", method, u, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return err
	}
	req.SetBasicAuth(c.email, c.password)
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("User-Agent", "occopus-go")
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return fmt.Errorf("%s %s: reading the answer: %w", method, u, err)
	}
	if len(raw) > maxBody {
		return fmt.Errorf("%s %s: the answer is larger than %d bytes", method, u, maxBody)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return answerError(method, u, resp.StatusCode, raw)
	}
	if out == nil || len(bytes.TrimSpace(raw)) == 0 {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s %s: the answer is not the JSON expected: %w", method, u, err)
	}
	return nil
}

// answerError reads CloudSigma's error list out of an answer, or keeps
// (the start of) the body.
func answerError(method, u string, status int, raw []byte) *apiError {
	e := &apiError{Method: method, URL: u, Status: status}
	var list []errorObject
	var one errorObject
	switch {
	case json.Unmarshal(raw, &list) == nil && len(list) > 0:
		one = list[0]
	case json.Unmarshal(raw, &one) == nil && one.Message != "":
	}
	if one.Message != "" || one.Type != "" {
		e.Type, e.Point, e.Message = one.Type, one.Point, one.Message
		if e.Point != "" {
			e.Message += " (" + e.Point + ")"
		}
		return e
	}
	s := strings.TrimSpace(string(raw))
	if len(s) > 500 {
		s = s[:500] + "…"
	}
	if s == "" {
		s = http.StatusText(status)
	}
	e.Message = s
	return e
}

// classify reads one failed call for the Caller: status, CloudSigma's
// error type and message, whether to try again.
func classify(err error) cloudapi.Class {
	var ae *apiError
	var ue *url.Error
	switch {
	case errors.As(err, &ae):
		return cloudapi.Class{
			Code: ae.Status, ProviderCode: ae.Type, Message: ae.Message, Endpoint: ae.Method + " " + ae.URL,
			Retryable: cloudapi.RetryableStatus(ae.Status),
			NotFound:  ae.Status == http.StatusNotFound,
		}
	case errors.As(err, &ue):
		msg := ue.Err.Error()
		if errors.Is(err, context.DeadlineExceeded) {
			msg = "no answer in time"
		}
		return cloudapi.Class{Endpoint: strings.ToUpper(ue.Op) + " " + ue.URL, Message: msg, Retryable: transient(err)}
	}
	return cloudapi.Class{Message: err.Error(), Retryable: transient(err)}
}

// transient: no answer came (reset, EOF, refused, a timeout). Every call
// here is safe to repeat: creations look for what an earlier attempt made
// before they try again.
func transient(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false
	}
	return cloudapi.Transient(err) || errors.Is(err, syscall.ECONNREFUSED)
}

// list reads every page of a listing (path ending in detail/), at most
// maxPages of them.
func list[T any](ctx context.Context, c *client, path string) ([]T, error) {
	var all []T
	for page := 0; ; page++ {
		if page >= maxPages {
			return nil, fmt.Errorf("GET %s%s: more than %d objects; refusing to read further", c.base, path, maxPages*pageSize)
		}
		var env envelope[T]
		q := url.Values{"limit": {fmt.Sprint(pageSize)}, "offset": {fmt.Sprint(page * pageSize)}}
		if err := c.do(ctx, http.MethodGet, path, q, nil, &env); err != nil {
			return nil, err
		}
		all = append(all, env.Objects...)
		if len(env.Objects) == 0 || env.Meta == nil || len(all) >= env.Meta.TotalCount {
			return all, nil
		}
	}
}

// ref is a reference to another object ({"uuid", "resource_uri"}).
type ref struct {
	UUID        string `json:"uuid"`
	ResourceURI string `json:"resource_uri,omitempty"`
}

// drive is what the backend reads of a drive.
type drive struct {
	UUID      string         `json:"uuid"`
	Name      string         `json:"name"`
	Status    string         `json:"status"`
	MountedOn []ref          `json:"mounted_on"`
	Meta      map[string]any `json:"meta"`
}

// server is what the backend reads of a server.
type server struct {
	UUID    string         `json:"uuid"`
	Name    string         `json:"name"`
	Status  string         `json:"status"`
	Meta    map[string]any `json:"meta"`
	Drives  []serverDrive  `json:"drives"`
	NICs    []serverNIC    `json:"nics"`
	Runtime *struct {
		NICs []runtimeNIC `json:"nics"`
	} `json:"runtime"`
}

// serverDrive is a drive attached to a server; drive is a reference
// object in answers (a uuid string is accepted in requests).
type serverDrive struct {
	Drive json.RawMessage `json:"drive"`
}

// uuid of the attached drive, whichever form the API gave.
func (d serverDrive) uuid() string {
	var r ref
	if json.Unmarshal(d.Drive, &r) == nil && r.UUID != "" {
		return r.UUID
	}
	var s string
	_ = json.Unmarshal(d.Drive, &s)
	return s
}

type serverNIC struct {
	Runtime *runtimeNIC `json:"runtime"`
}

// runtimeNIC is a NIC of a running server; ip_v4.uuid is the address.
type runtimeNIC struct {
	InterfaceType string `json:"interface_type"`
	IPv4          *ref   `json:"ip_v4"`
}

func (s server) meta(key string) string {
	v, ok := s.Meta[key]
	if !ok || v == nil {
		return ""
	}
	if str, ok := v.(string); ok {
		return str
	}
	return fmt.Sprint(v)
}
