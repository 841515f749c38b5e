package chef

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"syscall"

	gochef "github.com/go-chef/chef"

	"github.com/occopus-go/occopus/internal/cloudapi"
)

// Bounds on what is read from the server.
const (
	// maxAnswer bounds a successful answer: a listing of every role of a
	// big organization fits; anything larger is refused, not buffered.
	maxAnswer = 8 << 20
	// maxErrorAnswer bounds an error answer (Chef's are a line or two).
	maxErrorAnswer = 64 << 10
	// maxMessage bounds the server's message quoted in an error.
	maxMessage = 500
)

// call runs one API request through the Caller: retried when the server
// says it is worth it, each attempt bounded, failures returned as one
// *cloudapi.Error naming op, node, the request and Chef's message, with
// the key scrubbed. in is sent as JSON; out (when not nil) receives the
// JSON answer.
func (m *Manager) call(ctx context.Context, op, node, method, path string, in, out any) error {
	var body []byte
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return m.cloud.Fail(op, node, fmt.Errorf("encode the request: %w", err))
		}
		body = b
	}
	return m.cloud.Do(ctx, op, node, func(ctx context.Context) error {
		return m.send(ctx, method, path, body, out)
	})
}

// send makes one attempt, signed with the protocol the server is known to
// take. Until that is known, a 401 to protocol 1.3 is tried once more with
// 1.0 (servers older than Chef Server 12.4 know only 1.0); if 1.0 is
// refused too, the 1.3 answer is the one reported.
func (m *Manager) send(ctx context.Context, method, path string, body []byte, out any) error {
	p := m.proto.Load()
	c := m.c13
	if p == proto10 {
		c = m.c10
	}
	err := do(ctx, c, method, path, body, out)
	if p != protoUnknown {
		return err
	}
	if err == nil {
		m.proto.CompareAndSwap(protoUnknown, proto13)
		return nil
	}
	if status(err) != http.StatusUnauthorized {
		return err
	}
	err10 := do(ctx, m.c10, method, path, body, out)
	switch st := status(err10); {
	case err10 == nil || (st != 0 && st != http.StatusUnauthorized):
		// Signed with 1.0 the request got past authentication (a 404
		// of the object is an answer too).
		if m.proto.CompareAndSwap(protoUnknown, proto10) {
			m.log.Info("the chef server refuses signing protocol 1.3 and accepts 1.0; using 1.0")
		}
		return err10
	case st == 0:
		return err10 // no answer: nothing learnt
	}
	return err
}

// do sends one request with go-chef's signing and error parsing, with ctx
// (go-chef's services take none, so cancelling a build would not reach
// them) and with the answer's size bounded.
func do(ctx context.Context, c *gochef.Client, method, path string, body []byte, out any) error {
	var rd io.Reader
	if body != nil {
		rd = strings.NewReader(string(body))
	}
	req, err := c.NewRequest(method, path, rd)
	if err != nil {
		return err
	}
	req = req.WithContext(ctx)
	res, err := c.Client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode < 200 || res.StatusCode > 299 {
		res.Body = struct {
			io.Reader
			io.Closer
		}{io.LimitReader(res.Body, maxErrorAnswer), res.Body}
		return gochef.CheckResponse(res)
	}
	b, err := io.ReadAll(io.LimitReader(res.Body, maxAnswer+1))
	if err != nil {
		return err
	}
	if len(b) > maxAnswer {
		return fmt.Errorf("%s %s: the answer is larger than %d bytes", method, req.URL, maxAnswer)
	}
	if out == nil || method == http.MethodHead {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: the answer is not the JSON of a Chef Infra Server: %v", method, req.URL, err)
	}
	return nil
}

// status is the HTTP status of a failed request, 0 when none came.
func status(err error) int {
	var er *gochef.ErrorResponse
	if errors.As(err, &er) && er.Response != nil {
		return er.StatusCode()
	}
	var ce *cloudapi.Error
	if errors.As(err, &ce) {
		return ce.Code
	}
	return 0
}

func isConflict(err error) bool { return status(err) == http.StatusConflict }

// classify reads a failed request for the Caller: status, Chef's message,
// which request, whether to try again.
func classify(err error) cloudapi.Class {
	var er *gochef.ErrorResponse
	var ue *url.Error
	switch {
	case errors.As(err, &er) && er.Response != nil:
		code := er.StatusCode()
		c := cloudapi.Class{Code: code, Message: message(er.StatusText()), Retryable: cloudapi.RetryableStatus(code)}
		if r := er.Response.Request; r != nil {
			c.Endpoint = r.Method + " " + r.URL.String()
		}
		switch {
		case c.Message == "":
			// An answer that is no Chef error document (a proxy's page,
			// a URL that is not an organization's API).
			c.Message = fmt.Sprintf("HTTP %d %s without a Chef error in the answer", code, http.StatusText(code))
		case code == http.StatusNotFound && orgMissing(c.Message):
			// The organization, not the object: never "already gone".
			return c
		}
		c.NotFound = code == http.StatusNotFound
		return c
	case errors.As(err, &ue):
		return cloudapi.Class{Endpoint: strings.ToUpper(ue.Op) + " " + ue.URL, Message: "no answer: " + ue.Err.Error(),
			Retryable: cloudapi.Transient(err) || errors.Is(err, syscall.ECONNREFUSED)}
	}
	return cloudapi.Class{Message: err.Error()}
}

// message is the text of Chef's error document, {"error": ["…", …]} or
// {"error": "…"}, its parts joined, bounded; "" when the body is none.
func message(body []byte) string {
	var doc struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(body, &doc) != nil || len(doc.Error) == 0 {
		return ""
	}
	var parts []string
	var one string
	if json.Unmarshal(doc.Error, &parts) != nil {
		if json.Unmarshal(doc.Error, &one) != nil {
			return ""
		}
		parts = []string{one}
	}
	msg := strings.Join(parts, "; ")
	msg = strings.Join(strings.Fields(msg), " ")
	if len(msg) > maxMessage {
		msg = msg[:maxMessage] + "…"
	}
	return msg
}

// orgMissing reports Chef's answer for an organization that does not
// exist ("organization 'acme' does not exist.").
func orgMissing(msg string) bool {
	return strings.HasPrefix(strings.ToLower(msg), "organization ") && strings.Contains(msg, "does not exist")
}
