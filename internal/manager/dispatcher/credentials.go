package dispatcher

import (
	"bytes"

	"google.golang.org/protobuf/proto"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/state"
)

// Registry credentials ride with the tasks sent to a node, opened from
// their service's sealed value at the moment of sending: the service's
// current credentials, whatever they were when the task was made. They are
// set on the message's own copies of the tasks, never on what the
// assignment set keeps or the store holds, and go to no other node.

// needsCredentials tells whether a task may still pull its image: it is
// meant to run and has not started yet. A running task needs none.
func needsCredentials(t *api.Task) bool {
	return t.GetDesiredState() == api.TaskState_TASK_STATE_RUNNING &&
		t.GetStatus().GetState() < api.TaskState_TASK_STATE_RUNNING
}

// credentialsChanged tells whether ev changed a service's credentials:
// tasks not yet running must get the new ones (or lose the old).
func credentialsChanged(ev state.Event) bool {
	svc, ok := ev.Object.(*api.Service)
	if !ok || ev.Kind != state.EventUpdate {
		return false
	}
	old, ok := ev.Old.(*api.Service)
	return ok && !bytes.Equal(old.GetSealedRegistryAuth(), svc.GetSealedRegistryAuth())
}

// refreshCredentials queues again the tasks the node holds that may still
// pull: sent again, they carry the credentials their service has now. A
// credential change alone is no change to what the node holds, so change()
// would not resend them.
func (a *assignmentSet) refreshCredentials(tasks []*api.Task) {
	for _, t := range tasks {
		if _, held := a.sent[t.GetId()]; held && a.holds(t) && needsCredentials(t) {
			a.pending[t.GetId()] = proto.Clone(t).(*api.Task)
		}
	}
}

// withCredentials sets, on the tasks of msg that may still pull, the
// credentials of their service, and wraps msg for the node's stream.
func (d *Dispatcher) withCredentials(nodeID string, msg *api.Assignments) *api.SessionMessage {
	if d.cfg.Sealer != nil {
		auths := d.openCredentials(nodeID, msg.GetTasks())
		for _, t := range msg.GetTasks() {
			if needsCredentials(t) {
				t.RegistryAuth = auths[t.GetServiceId()]
			}
		}
	}
	return assignmentsMessage(msg)
}

// openCredentials opens the credentials of the services of tasks that may
// still pull, by service ID. A value that does not open (another data key,
// damage) is logged, and its tasks go without: their pull then fails with
// the registry's own refusal, which the task's status shows.
func (d *Dispatcher) openCredentials(nodeID string, tasks []*api.Task) map[string]*api.RegistryAuth {
	sealed := map[string][]byte{}
	d.store.View(func(tx state.ReadTx) {
		for _, t := range tasks {
			id := t.GetServiceId()
			if _, seen := sealed[id]; !seen && needsCredentials(t) {
				sealed[id] = tx.GetService(id).GetSealedRegistryAuth()
			}
		}
	})
	auths := make(map[string]*api.RegistryAuth, len(sealed))
	for id, value := range sealed {
		if len(value) == 0 {
			continue
		}
		auth := &api.RegistryAuth{}
		if err := d.cfg.Sealer.OpenMessage(value, []byte(id), auth); err != nil {
			d.log.Warn("cannot open a service's registry credentials; its tasks go without them",
				"service.id", id, "node.id", nodeID, "err", err)
			continue
		}
		auths[id] = auth
	}
	return auths
}
