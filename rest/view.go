package rest

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"

	"github.com/occopus-go/occopus/store"
)

// view keeps the answers of GET /infrastructures/ and GET
// /infrastructures/{id} in memory, valid while the store's revision
// (store.Revisioned) stays what it was before they were read: a write of
// this process or another one changes it, and the next request reads the
// store again. The check is one cheap query per request, so a request
// always sees every write committed before it started (read-your-writes,
// for this process and the others sharing the store). Without a
// Revisioned store, nothing is kept.
//
// It holds at most one answer per stored infrastructure (answers of
// unknown ids are not kept) and drops everything when the revision moves.
type view struct {
	rev store.Revisioned
	mu  sync.Mutex
	at  uint64 // the revision the kept answers were read at
	get map[string]*answer
	all *answer
}

// answer is a 200 response: its body and the Occopus-Pass-* headers.
type answer struct {
	body       []byte
	passResult string
	passError  string
}

func newView(st store.Store) *view {
	r, ok := st.(store.Revisioned)
	if !ok {
		return nil
	}
	return &view{rev: r, get: map[string]*answer{}}
}

// current returns the store's revision and drops what was read at
// another one. ok is false when the revision cannot be read: then the
// request reads the store and keeps nothing.
func (v *view) current(ctx context.Context) (uint64, bool) {
	rev, err := v.rev.Revision(ctx)
	if err != nil {
		return 0, false
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if rev != v.at {
		v.at, v.get, v.all = rev, map[string]*answer{}, nil
	}
	return rev, true
}

// lookup returns the kept answer for id ("" for the list) at rev.
func (v *view) lookup(rev uint64, id string) *answer {
	v.mu.Lock()
	defer v.mu.Unlock()
	if rev != v.at {
		return nil
	}
	if id == "" {
		return v.all
	}
	return v.get[id]
}

// keep stores an answer read after rev was seen, unless the revision
// moved on meanwhile (then it may be stale, and the next request reads
// again).
func (v *view) keep(rev uint64, id string, a *answer) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if rev != v.at {
		return
	}
	if id == "" {
		v.all = a
	} else {
		v.get[id] = a
	}
}

// serve answers from the view when it can: read (the store read and
// encoding, nil on an error already answered) runs only on a miss.
func (s *Server) serveViewed(w http.ResponseWriter, r *http.Request, id string, read func() *answer) {
	var (
		rev uint64
		ok  bool
	)
	if s.view != nil {
		rev, ok = s.view.current(r.Context())
		if ok {
			if a := s.view.lookup(rev, id); a != nil {
				s.writeAnswer(w, a)
				return
			}
		}
	}
	a := read()
	if a == nil {
		return
	}
	if ok {
		s.view.keep(rev, id, a)
	}
	s.writeAnswer(w, a)
}

func (s *Server) writeAnswer(w http.ResponseWriter, a *answer) {
	if a.passResult != "" {
		w.Header().Set("Occopus-Pass-Result", a.passResult)
	}
	if a.passError != "" {
		w.Header().Set("Occopus-Pass-Error", a.passError)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	w.Write(a.body)
}

// encodeAnswer is writeJSON's encoding of a 200 body.
func encodeAnswer(v any) (*answer, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return &answer{body: append(b, '\n')}, nil
}

// passHeaderValues are the Occopus-Pass-* headers of the report: beside
// the Occopus-shaped report (which has no room for it), the outcome of the
// infrastructure's last pass.
func (s *Server) passHeaderValues(ctx context.Context, id string) (result, msg string) {
	st, err := s.m.Status(ctx, id)
	if err != nil || st.LastPass == nil {
		return "", ""
	}
	if st.LastPass.Error != "" {
		msg = store.CutString(strings.Join(strings.Fields(s.redact(st.LastPass.Error)), " "), 1024) // one header line
	}
	return st.LastPass.Result, msg
}
