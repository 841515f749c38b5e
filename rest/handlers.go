package rest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/occopus-go/occopus"
	"github.com/occopus-go/occopus/auth"
	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/store"
)

// requestFile is the file name positions in a submitted description carry.
const requestFile = "request"

// ErrorBody is the JSON of every error response (Occopus's shape).
type ErrorBody struct {
	StatusCode int    `json:"status_code"`
	Reason     string `json:"reason"`
	Message    string `json:"message"`
}

// InfraID is the body of create, attach, detach and notify.
type InfraID struct {
	InfraID string `json:"infraid"`
}

// Deleted is the body of DELETE: Occopus's {"infraid"}, and after a
// forced delete the resources that could not be removed.
type Deleted struct {
	InfraID string             `json:"infraid"`
	Left    []occopus.Leftover `json:"left,omitempty"`
}

// DeleteFailed is the error body of a DELETE that could not remove
// everything: the error shape, and what is left.
type DeleteFailed struct {
	ErrorBody
	Left []occopus.Leftover `json:"left"`
}

// ScaleResult is the body of scaleup and scaleto. Count echoes the request,
// as Occopus does; Target and Clamped say what was stored, so that a client
// learns at once that min or max bounded its request.
type ScaleResult struct {
	Method   string `json:"method"`
	InfraID  string `json:"infraid"`
	NodeName string `json:"nodename"`
	Count    int    `json:"count"`
	Target   int    `json:"target"`
	Clamped  string `json:"clamped,omitempty"`
}

// ScaleDownResult is the body of scaledown; NodeID is the instance asked
// for (id or address), null when none was named, as Occopus sends it.
type ScaleDownResult struct {
	Method   string  `json:"method"`
	InfraID  string  `json:"infraid"`
	NodeName string  `json:"nodename"`
	NodeID   *string `json:"nodeid"`
}

func (s *Server) redact(msg string) string { return auth.Redact(msg, s.cfg.Secrets) }

func (s *Server) writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		s.log.Error("encode response", "err", err)
		code = http.StatusInternalServerError
		b = []byte(`{"status_code":500,"reason":"Internal Server Error","message":"cannot encode the response"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

func (s *Server) writeError(w http.ResponseWriter, code int, msg string) {
	s.writeJSON(w, code, ErrorBody{StatusCode: code, Reason: http.StatusText(code), Message: s.redact(msg)})
}

// fail maps an error to its status: invalid descriptions and requests
// 400, unknown infrastructures and nodes 404, conflicts 409, bodies too
// large 413, everything else 500.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	code := http.StatusInternalServerError
	var des descr.Errors
	var de *descr.Error
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		code = http.StatusRequestEntityTooLarge
		err = fmt.Errorf("request body larger than %d bytes", tooBig.Limit)
	case errors.Is(err, occopus.ErrUnknownInfra), errors.Is(err, occopus.ErrUnknownNode):
		code = http.StatusNotFound
	case errors.As(err, &des), errors.As(err, &de), errors.Is(err, occopus.ErrInvalid), errors.Is(err, errBadRequest):
		code = http.StatusBadRequest
	case errors.Is(err, store.ErrExists):
		code = http.StatusConflict
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		code = http.StatusServiceUnavailable
	}
	msg := err.Error()
	if code >= 500 {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", s.redact(msg))
	}
	s.writeError(w, code, msg)
}

var errBadRequest = errors.New("bad request")

func badRequest(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errBadRequest, fmt.Sprintf(format, args...))
}

// createInfra: POST /infrastructures/ with a YAML description. Answers
// 200 {"infraid": ID} as Occopus does (not 201), the infrastructure being
// built in the background.
func (s *Server) createInfra(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if len(body) == 0 {
		s.fail(w, r, badRequest("empty body: POST an infrastructure description (YAML)"))
		return
	}
	in, err := descr.ParseInfra(requestFile, body, descr.LoadOptions{NoImports: !s.cfg.AllowFileImports, MaxBytes: s.cfg.MaxDescriptionBytes})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	id, err := s.m.Add(r.Context(), in, occopus.FromNetwork())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info("infrastructure submitted", "infra", id, "name", in.Name)
	s.writeJSON(w, http.StatusOK, InfraID{InfraID: id})
}

// listInfras: GET /infrastructures/ lists every stored infrastructure,
// attached or not, oldest first.
func (s *Server) listInfras(w http.ResponseWriter, r *http.Request) {
	infras, err := s.m.List(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ids := make([]string, 0, len(infras))
	for _, inf := range infras {
		ids = append(ids, inf.ID)
	}
	s.writeJSON(w, http.StatusOK, map[string][]string{"infrastructures": ids})
}

func (s *Server) getInfra(w http.ResponseWriter, r *http.Request) {
	rep, err := s.m.Get(r.Context(), r.PathValue("id"))
	if err == nil {
		s.passHeaders(w, r, r.PathValue("id"))
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, rep)
}

// deleteInfra tears the infrastructure down and answers when it is gone.
// The tear-down does not stop when the client goes away.
func (s *Server) deleteInfra(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(teardownTimeout + time.Minute))
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), teardownTimeout)
	defer cancel()
	tearDown := s.m.TearDown
	switch f := r.URL.Query().Get("force"); f {
	case "", "false", "0":
	case "true", "1":
		tearDown = s.m.ForceTearDown
	default:
		s.fail(w, r, badRequest("force=%q: want true or false", f))
		return
	}
	rep, err := tearDown(ctx, id)
	if rep != nil {
		for i := range rep.Left {
			rep.Left[i].Error = s.redact(rep.Left[i].Error)
		}
	}
	if err != nil {
		if rep != nil && len(rep.Left) > 0 {
			// Say what is left, and that force removes the record anyway.
			s.writeJSON(w, http.StatusInternalServerError, DeleteFailed{ErrorBody: ErrorBody{StatusCode: 500, Reason: http.StatusText(500),
				Message: s.redact(err.Error()) + " (the record is kept; DELETE with ?force=true removes it anyway)"}, Left: rep.Left})
			return
		}
		s.fail(w, r, err)
		return
	}
	s.log.Info("infrastructure destroyed", "infra", id, "instances", len(rep.Instances), "orphans", len(rep.Orphans), "left", len(rep.Left))
	s.writeJSON(w, http.StatusOK, Deleted{InfraID: id, Left: rep.Left})
}

func countParam(r *http.Request) (int, error) {
	v := r.PathValue("count")
	if v == "" {
		return 1, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, badRequest("count %q: want a positive integer", v)
	}
	return n, nil
}

func (s *Server) scaleUp(w http.ResponseWriter, r *http.Request) {
	count, err := countParam(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	id, node := r.PathValue("id"), r.PathValue("node")
	after, err := s.m.Scale(r.Context(), occopus.ScaleRequest{InfraID: id, Node: node, Change: count})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.logScale(id, node, after.Target, after.Clamped)
	s.writeJSON(w, http.StatusOK, ScaleResult{Method: "scaleup", InfraID: id, NodeName: node, Count: count, Target: after.Target, Clamped: after.Clamped})
}

func (s *Server) scaleDown(w http.ResponseWriter, r *http.Request) {
	id, node := r.PathValue("id"), r.PathValue("node")
	req := occopus.ScaleRequest{InfraID: id, Node: node, Change: -1}
	var nodeID *string
	if v := r.PathValue("nodeid"); v != "" {
		req.Change, req.Victim, nodeID = 0, v, &v
	}
	after, err := s.m.Scale(r.Context(), req)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.logScale(id, node, after.Target, after.Clamped)
	s.writeJSON(w, http.StatusOK, ScaleDownResult{Method: "scaledown", InfraID: id, NodeName: node, NodeID: nodeID})
}

func (s *Server) scaleTo(w http.ResponseWriter, r *http.Request) {
	count, err := countParam(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	id, node := r.PathValue("id"), r.PathValue("node")
	after, err := s.m.Scale(r.Context(), occopus.ScaleRequest{InfraID: id, Node: node, Set: &count})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.logScale(id, node, after.Target, after.Clamped)
	s.writeJSON(w, http.StatusOK, ScaleResult{Method: "scaleto", InfraID: id, NodeName: node, Count: count, Target: after.Target, Clamped: after.Clamped})
}

func (s *Server) logScale(id, node string, target int, clamped string) {
	if clamped != "" {
		s.log.Warn("scaling request clamped", "infra", id, "node", node, "target", target, "why", clamped)
		return
	}
	s.log.Info("scaling request stored", "infra", id, "node", node, "target", target)
}

func (s *Server) attach(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := s.m.Attach(r.Context(), id); err != nil {
		s.fail(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, InfraID{InfraID: id})
}

func (s *Server) detach(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := s.m.Detach(r.Context(), id); err != nil {
		s.fail(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, InfraID{InfraID: id})
}

// notify stores a JSON object of properties for an infrastructure,
// replacing earlier ones. A "webhook" property (an http or https URL)
// receives every node state change of the infrastructure.
func (s *Server) notify(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxNotifyBytes))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var props map[string]any
	if err := json.Unmarshal(body, &props); err != nil || props == nil {
		s.fail(w, r, badRequest("the body must be a JSON object of properties"))
		return
	}
	if v, ok := props["webhook"]; ok {
		u, isStr := v.(string)
		if !isStr {
			s.fail(w, r, badRequest("webhook: want a URL string"))
			return
		}
		if err := s.egress.checkURL(u); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	if _, err := s.m.Store().Infra(r.Context(), id); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			err = fmt.Errorf("%w: %s", occopus.ErrUnknownInfra, id)
		}
		s.fail(w, r, err)
		return
	}
	if err := s.hooks.set(r.Context(), id, props); err != nil {
		s.fail(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, InfraID{InfraID: id})
}

func (s *Server) openapi(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/yaml")
	w.Write(openAPI)
}

// dashboard serves the browser view. Its content security policy keeps it
// to this origin: the page needs nothing else.
func (s *Server) dashboard(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Write(dashboardPage)
}

// healthz answers 200 while the store answers.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if _, err := s.m.Store().NodeDefTypes(ctx); err != nil {
		s.writeError(w, http.StatusServiceUnavailable, "store: "+err.Error())
		return
	}
	s.writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}
