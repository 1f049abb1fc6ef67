package linodeapi

import (
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// event is one entry of the account's event log (GET /account/events). The lab records
// what a client waits on through events: an LKE node's Linode instance going away
// (linode_delete) when its cluster, pool or node is deleted, a pool shrinks or a node is
// recycled. Linode's Terraform provider, deleting an LKE cluster, waits for the
// linode_delete event of every node's instance before it calls the delete done.
type event struct {
	id       int
	action   string
	created  time.Time
	entityID int
	label    string
	kind     string // entity type: "linode"
}

// maxEvents bounds the log; the real API keeps 90 days, the lab the newest entries.
const maxEvents = 10000

var eventFields = map[string]bool{
	"id": true, "action": true, "created": true, "entity.id": true, "entity.type": true,
	"entity.label": true, "status": true, "seen": true, "read": true,
}

// instanceGoneLocked records that node's instance was deleted, if it had one.
func (s *Server) instanceGoneLocked(c *cluster, n *node) {
	if n.instanceID == 0 {
		return
	}
	s.nextEvent++
	s.eventLog = append(s.eventLog, event{
		id: s.nextEvent, action: "linode_delete", created: s.now(), entityID: n.instanceID,
		label: instanceLabel(c, n), kind: "linode",
	})
	if len(s.eventLog) > maxEvents {
		s.eventLog = s.eventLog[len(s.eventLog)-maxEvents:]
	}
}

// instanceLabel is the label of a node's Linode instance, as GET linode/instances shows it.
func instanceLabel(c *cluster, n *node) string { return fmt.Sprintf("lke%d-%s", c.id, n.id) }

func (e event) json() map[string]any {
	return map[string]any{
		"id": e.id, "action": e.action, "created": stamp(e.created), "status": "finished",
		"percent_complete": 100, "rate": nil, "read": false, "seen": false, "time_remaining": nil,
		"username": "lab", "message": "", "duration": 0, "secondary_entity": nil,
		"entity": map[string]any{
			"id": e.entityID, "label": e.label, "type": e.kind, "status": "",
			"url": fmt.Sprintf("/v4/linode/instances/%d", e.entityID),
		},
		"maintenance_policy_set": "",
	}
}

// events serves account/events[/{id}], newest first as the real API lists them.
func (s *Server) events(w http.ResponseWriter, r *http.Request, rest []string) {
	if r.Method != http.MethodGet {
		methodNotAllowed(w, http.MethodGet)
		return
	}
	s.mu.Lock()
	evs := append([]event(nil), s.eventLog...)
	s.mu.Unlock()
	switch len(rest) {
	case 0:
		items := make([]any, 0, len(evs))
		for i := len(evs) - 1; i >= 0; i-- {
			items = append(items, evs[i].json())
		}
		writeList(w, r, items, eventFields)
	case 1:
		id, err := strconv.Atoi(rest[0])
		for _, e := range evs {
			if err == nil && e.id == id {
				writeJSON(w, http.StatusOK, e.json())
				return
			}
		}
		writeError(w, http.StatusNotFound, notFound())
	default:
		writeError(w, http.StatusNotFound, notFound())
	}
}
