package rest

import (
	"net/http"
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
