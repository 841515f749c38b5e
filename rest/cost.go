package rest

import (
	"context"
	"net/http"
	"time"
)

// costTimeout bounds GET .../cost: it asks a backend per instance (with
// the cloud caller's own retries and timeouts under it).
const costTimeout = time.Minute

// getCost: GET /infrastructures/{id}/cost answers what the instances have
// cost so far where their backends tell it (Occopus's route, backed by
// CloudBroker's costs.xml), as occopus.CostReport: total_cost, per node
// and per instance, null where a backend tells none. A backend's failure
// is that instance's error, scrubbed of credentials.
func (s *Server) getCost(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), costTimeout)
	defer cancel()
	rep, err := s.m.Cost(ctx, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	for name, nc := range rep.Nodes {
		for id, ic := range nc.Instances {
			if ic.Error != "" {
				ic.Error = s.redact(ic.Error)
				nc.Instances[id] = ic
			}
		}
		rep.Nodes[name] = nc
	}
	s.writeJSON(w, http.StatusOK, rep)
}
