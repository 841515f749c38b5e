package cloudbroker

import (
	"bytes"
	"context"
	"encoding/xml"
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
	// maxBody bounds one answer (a listing of every instance of the
	// account included).
	maxBody = 8 << 20
	// maxUserData bounds the rendered cloud-init sent (our bound).
	maxUserData = 256 << 10
)

// client speaks CloudBroker's REST API: XML bodies with Rails-style
// dashed element names, HTTP Basic.
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
	// Message is Rails' <errors><error>…</error></errors> joined with
	// "; ", or the trimmed body.
	Message string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%s %s: HTTP %d: %s", e.Method, e.URL, e.Status, e.Message)
}

// railsErrors is Rails' validation error document.
type railsErrors struct {
	XMLName xml.Name `xml:"errors"`
	Errors  []string `xml:"error"`
}

// railsError is the single-error form some controllers answer.
type railsError struct {
	XMLName xml.Name `xml:"error"`
	Message string   `xml:"message"`
	Text    string   `xml:",chardata"`
}

// do sends one request: path below the endpoint, an XML body (nil: none)
// and decodes a 2xx answer into out (nil: discarded). Failures are
// *apiError (an answer) or the transport's error (none).
func (c *client) do(ctx context.Context, method, path string, in, out any) error {
	u := c.base + path
	var body io.Reader
	if in != nil {
		b, err := xml.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode %s %s: %w", method, u, err)
		}
		body = bytes.NewReader(append([]byte(xml.Header), b...))
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return err
	}
	req.SetBasicAuth(c.email, c.password)
	req.Header.Set("Accept", "application/xml")
	if in != nil {
		req.Header.Set("Content-Type", "application/xml")
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
	if err := xml.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s %s: the answer is not the XML expected: %w", method, u, err)
	}
	return nil
}

func answerError(method, u string, status int, raw []byte) *apiError {
	e := &apiError{Method: method, URL: u, Status: status}
	var many railsErrors
	var one railsError
	switch {
	case xml.Unmarshal(raw, &many) == nil && len(many.Errors) > 0:
		msgs := make([]string, 0, len(many.Errors))
		for _, m := range many.Errors {
			if m = strings.TrimSpace(m); m != "" {
				msgs = append(msgs, m)
			}
		}
		e.Message = strings.Join(msgs, "; ")
	case xml.Unmarshal(raw, &one) == nil:
		e.Message = strings.TrimSpace(one.Message)
		if e.Message == "" {
			e.Message = strings.TrimSpace(one.Text)
		}
	}
	if e.Message == "" {
		s := strings.TrimSpace(string(raw))
		if len(s) > 500 {
			s = s[:500] + "…"
		}
		e.Message = s
	}
	if e.Message == "" {
		e.Message = http.StatusText(status)
	}
	return e
}

// classify reads one failed call for the Caller: status, CloudBroker's
// message, whether to try again.
func classify(err error) cloudapi.Class {
	var ae *apiError
	var ue *url.Error
	switch {
	case errors.As(err, &ae):
		return cloudapi.Class{Code: ae.Status, Message: ae.Message, Endpoint: ae.Method + " " + ae.URL,
			Retryable: cloudapi.RetryableStatus(ae.Status), NotFound: ae.Status == http.StatusNotFound}
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
// here is safe to repeat: the creation looks for the instance named after
// the node before it tries again.
func transient(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false
	}
	return cloudapi.Transient(err) || errors.Is(err, syscall.ECONNREFUSED)
}

// instance is what the backend reads of an instance (Rails' to_xml, with
// dashed names).
type instance struct {
	XMLName          xml.Name `xml:"instance"`
	ID               string   `xml:"id"`
	Name             string   `xml:"name"`
	Status           string   `xml:"status"`
	ExternalHostname string   `xml:"external-hostname"`
	ExternalIP       string   `xml:"external-ip-address"`
	InternalHostname string   `xml:"internal-hostname"`
	InternalIP       string   `xml:"internal-ip-address"`
}

// instances is GET instances.xml: <instances type="array">.
type instances struct {
	XMLName   xml.Name   `xml:"instances"`
	Instances []instance `xml:"instance"`
}

// createRequest is the <instance> of POST instances.xml: the
// description's keys as given (Occopus sends them so), then the
// backend's own elements.
type createRequest struct {
	XMLName xml.Name `xml:"instance"`
	Fields  []element
}

// element is one text element of a request.
type element struct {
	XMLName xml.Name
	Value   string `xml:",chardata"`
}

// costs is GET instances/{id}/costs.xml: the fees charged for the
// instance so far, one of them named Total:
//
//	<instance-costs>
//	  <fees type="array">
//	    <fee><name>Total</name><value type="decimal">0.42</value><currency>EUR</currency></fee>
//	  </fees>
//	</instance-costs>
//
// Fees directly under the root element are read too.
type costs struct {
	Fees    []fee `xml:"fees>fee"`
	TopFees []fee `xml:"fee"`
}

type fee struct {
	Name     string `xml:"name"`
	Value    string `xml:"value"`
	Currency string `xml:"currency"`
}
