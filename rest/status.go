package rest

import (
	"net/http"
	"strings"

	"github.com/occopus-go/occopus/store"
)

// status: GET /infrastructures/{id}/status, what an infrastructure is
// doing: attached or not, its last pass's outcome and error, instance
// counts by state.
func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	st, err := s.m.Status(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if st.LastPass != nil {
		st.LastPass.Error = s.redact(st.LastPass.Error)
	}
	s.writeJSON(w, http.StatusOK, st)
}

// passHeaders tells, beside the Occopus-shaped report (which has no room
// for it), the outcome of the infrastructure's last pass.
func (s *Server) passHeaders(w http.ResponseWriter, r *http.Request, id string) {
	st, err := s.m.Status(r.Context(), id)
	if err != nil || st.LastPass == nil {
		return
	}
	w.Header().Set("Occopus-Pass-Result", st.LastPass.Result)
	if st.LastPass.Error != "" {
		msg := strings.Join(strings.Fields(s.redact(st.LastPass.Error)), " ") // one header line
		w.Header().Set("Occopus-Pass-Error", store.CutString(msg, 1024))
	}
}
