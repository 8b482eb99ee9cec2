package worker

import (
	"slices"

	"github.com/warren-project/warren/api"
)

// learn passes on what a session says of the cluster: the managers and
// the node's role. A session says it first, and again when the role changes.
func (a *Agent) learn(info *api.SessionInfo) {
	a.learnManagers(info)
	a.learnRole(info)
}

// learnManagers passes the managers a session names to Config.OnManagers,
// so the node can fail over to them when this one goes. An empty list says
// nothing (an older manager, or one that does not know), so it is not passed.
func (a *Agent) learnManagers(info *api.SessionInfo) {
	if a.cfg.OnManagers == nil || len(info.GetManagers()) == 0 {
		return
	}
	// A copy: the callback may keep it, and the message is not ours.
	a.cfg.OnManagers(slices.Clone(info.GetManagers()))
}

// learnRole passes the node's current role to Config.OnRole. A session
// names it first, then again each time the cluster changes it.
func (a *Agent) learnRole(info *api.SessionInfo) {
	if a.cfg.OnRole != nil && info.GetRole() != api.NodeRole_NODE_ROLE_UNSPECIFIED {
		a.cfg.OnRole(info.GetRole())
	}
}
