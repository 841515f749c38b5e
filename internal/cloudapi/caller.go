package cloudapi

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"
)

// DefaultTimeout bounds one attempt of a call, so that a hung endpoint
// becomes a retryable failure instead of a stuck build.
const DefaultTimeout = 60 * time.Second

// Redacted replaces secrets in the text of errors and logs.
const Redacted = "[REDACTED]"

// Class is what a provider's classifier says of one failed attempt.
type Class struct {
	Code         int    // HTTP status; 0 when no answer came
	ProviderCode string // the provider's error code (InvalidAMIID.NotFound); "" when none
	Message      string // the provider's message, or what went wrong on the way
	Endpoint     string // where the attempt went (POST https://…); "" names the Caller's Endpoint
	Retryable    bool   // worth another try: throttling, 5xx, a connection lost
	NotFound     bool   // the provider says the object does not exist
}

// Caller runs the calls of one handler to its cloud. Set the fields
// before the first call and leave them (Secrets are read
// once); a Caller is then safe for concurrent use.
type Caller struct {
	// Provider prefixes every error ("ec2", "nova").
	Provider string
	// Endpoint is named in errors whose classifier gives none.
	Endpoint string
	// Policy retries the attempts Classify (or the call itself, with a
	// Retryable error) marks as worth another try.
	Policy Policy
	// Timeout bounds each attempt (default DefaultTimeout); an attempt
	// cut by it is tried again.
	Timeout time.Duration
	// Classify reads the provider's answer out of an SDK error; nil gives
	// the error's text as the message and no retries.
	Classify func(err error) Class
	// Secrets are removed from every string of an Error, from the text of
	// its cause and from the log, longest first.
	Secrets []string
	// Log gets a debug line for each retried attempt; nil: no log.
	Log *slog.Logger

	once     sync.Once
	replacer *strings.Replacer
}

// Do runs one logical call: fn, attempt after attempt, until it succeeds,
// fails for good, the attempts run out or ctx ends. Every attempt has its
// own timeout. Once ctx has ended nothing is retried. The error is an
// *Error naming op (what was done, "create server") and node ("" when the
// call is not about one node).
func (c *Caller) Do(ctx context.Context, op, node string, fn func(ctx context.Context) error) error {
	attempts := 0
	var last error
	var class Class
	err := c.Policy.Do(ctx, func(ctx context.Context) error {
		attempts++
		actx, cancel := context.WithTimeout(ctx, c.timeout())
		defer cancel()
		last = fn(actx)
		if last == nil {
			return nil
		}
		class = c.classify(last)
		if ctx.Err() != nil { // the caller gave up: never again
			class.Retryable = false
			return last
		}
		class.Retryable = class.Retryable || IsRetryable(last) || errors.Is(actx.Err(), context.DeadlineExceeded)
		if !class.Retryable {
			return last
		}
		if c.Log != nil {
			c.Log.Debug("retrying", "op", op, "node", node, "attempt", attempts, "error", c.Scrub(last.Error()))
		}
		return &Retryable{Err: last}
	})
	if err == nil {
		return nil
	}
	cause := last
	stopped := ctx.Err()
	if stopped != nil {
		switch {
		case last == nil:
			cause = stopped
		case errors.Is(last, stopped):
			if class.Code == 0 && class.ProviderCode == "" {
				class.Message = "" // the attempt cut by the caller: nothing to tell
			}
		default:
			cause = errors.Join(stopped, last)
		}
	}
	e := c.NewError(op, node, class, cause)
	e.Attempts, e.Stopped = attempts, stopped
	return e
}

// Fail is the *Error of a call refused before it was made (a check of
// the handler's own).
func (c *Caller) Fail(op, node string, err error) *Error {
	return c.NewError(op, node, Class{Message: err.Error()}, err)
}

// NewError builds an *Error from a classified failure, secrets removed.
func (c *Caller) NewError(op, node string, cl Class, cause error) *Error {
	e := &Error{
		Provider: c.Provider, Op: c.Scrub(op), Node: c.Scrub(node), Endpoint: c.Scrub(cmp.Or(cl.Endpoint, c.Endpoint)),
		Code: cl.Code, ProviderCode: c.Scrub(cl.ProviderCode), Message: c.Scrub(cl.Message),
		Retryable: cl.Retryable, NotFound: cl.NotFound,
	}
	if cause != nil {
		e.err = &scrubbed{err: cause, msg: c.Scrub(cause.Error())}
	}
	return e
}

// Scrub replaces the Caller's secrets in s, longest first, so that a
// secret containing another is removed whole.
func (c *Caller) Scrub(s string) string {
	c.once.Do(func() {
		var secrets []string
		for _, x := range c.Secrets {
			if x != "" {
				secrets = append(secrets, x)
			}
		}
		sort.SliceStable(secrets, func(i, j int) bool { return len(secrets[i]) > len(secrets[j]) })
		mask := Redacted
		pairs := make([]string, 0, 2*len(secrets))
		for _, x := range secrets {
			pairs = append(pairs, x, mask)
		}
		if len(pairs) > 0 {
			c.replacer = strings.NewReplacer(pairs...)
		}
	})
	if c.replacer == nil || s == "" {
		return s
	}
	return c.replacer.Replace(s)
}

func (c *Caller) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return DefaultTimeout
}

func (c *Caller) classify(err error) Class {
	if c.Classify == nil {
		return Class{Message: err.Error()}
	}
	return c.Classify(err)
}

// Error is a failed call to a cloud: what was done, for which node,
// where, what the cloud answered and how often it was tried. Every string
// in it, and the text of its cause, is free of the handler's secrets.
//
// Error() reads
//
//	<provider>: <op>[ for node <node>][ (<endpoint>)]: <answer>[ (<notes>)]
//
// where answer is "[<provider code>: ]<message>" (or "HTTP <code>" when
// the cloud said nothing more), or "stopped: <why>[; last answer: …]"
// when the caller's context ended the call; the notes are the HTTP status
// and "gave up after N attempts" (the attempts ran out) or "after N
// attempts". For example:
//
//	ec2: create node web (https://ec2.example/): RequestLimitExceeded: Request limit exceeded. (HTTP 503; gave up after 6 attempts)
//	nova: create server for node 3f2a… (POST https://nova.example/v2.1/servers): Invalid flavorRef provided. (HTTP 400)
//	nova: list flavors for node 3f2a… (GET https://nova.example/v2.1/flavors/detail): stopped: context canceled; last answer: HTTP 503 (after 2 attempts)
type Error struct {
	Provider string // "ec2", "nova"
	Op       string // "create node web", "create server", ...
	Node     string // the node the call was for; "" when not about one node
	Endpoint string // where the call went: a base URL, or "METHOD URL"
	// Code is the HTTP status of the last answer; 0 when none came.
	Code int
	// ProviderCode is the provider's error code (InvalidAMIID.NotFound);
	// "" when it gave none.
	ProviderCode string
	// Message is the provider's message, or what went wrong on the way.
	Message string
	// Attempts is how many attempts were made (0: refused before any).
	Attempts int
	// Retryable: the last failure was worth another try, but the
	// attempts (or, with Stopped, the caller's time) ran out.
	Retryable bool
	// NotFound: the provider says the object does not exist.
	NotFound bool
	// Stopped is the caller's context error when that ended the call.
	Stopped error

	err error // the cause, its text scrubbed
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Provider + ": " + e.Op)
	if e.Node != "" {
		b.WriteString(" for node " + e.Node)
	}
	if e.Endpoint != "" {
		b.WriteString(" (" + e.Endpoint + ")")
	}
	b.WriteString(": ")
	answer := e.ProviderCode
	if e.Message != "" {
		if answer != "" {
			answer += ": "
		}
		answer += e.Message
	}
	var notes []string
	// A classifier may have put the status in the message already (an
	// answer that is no error document of the provider's).
	if status := fmt.Sprintf("HTTP %d", e.Code); e.Code != 0 && !strings.HasPrefix(e.Message, status) {
		if answer == "" {
			answer = status
		} else {
			notes = append(notes, status)
		}
	}
	switch {
	case e.Stopped == nil:
		b.WriteString(cmp.Or(answer, "failed without details"))
	case answer == "":
		b.WriteString("stopped: " + e.Stopped.Error())
	case e.Code != 0 || e.ProviderCode != "":
		b.WriteString("stopped: " + e.Stopped.Error() + "; last answer: " + answer)
	default:
		b.WriteString("stopped: " + e.Stopped.Error() + "; last error: " + answer)
	}
	switch {
	case e.Attempts > 1 && e.Retryable && e.Stopped == nil:
		notes = append(notes, fmt.Sprintf("gave up after %d attempts", e.Attempts))
	case e.Attempts > 1:
		notes = append(notes, fmt.Sprintf("after %d attempts", e.Attempts))
	}
	if len(notes) > 0 {
		b.WriteString(" (" + strings.Join(notes, "; ") + ")")
	}
	return b.String()
}

// Unwrap gives the cause, for errors.Is(err, context.Canceled) and
// errors.As to the SDK's error types.
func (e *Error) Unwrap() error { return e.err }

// IsNotFound reports whether err is an *Error whose provider said the
// object does not exist.
func IsNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.NotFound
}

// scrubbed is a cause whose text has the secrets removed; errors.Is and
// errors.As still reach the original.
type scrubbed struct {
	err error
	msg string
}

func (s *scrubbed) Error() string { return s.msg }
func (s *scrubbed) Unwrap() error { return s.err }
