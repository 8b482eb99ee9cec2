package orchestrator

import (
	"slices"

	"github.com/warren-project/warren/api"
)

// replicas is how many slots a replicated service wants. The API always
// sets a mode; a spec without one counts as one replica, Docker's default.
func replicas(spec *api.ServiceSpec) uint64 {
	if r := spec.GetReplicated(); r != nil {
		return r.GetReplicas()
	}
	return 1
}

// replicated plans a replicated service's slots 1..replicas: missing slots
// get a task, slots above the count (and tasks without a valid slot) are
// removed, and each live slot's current task is healed. It returns the live
// slots, in slot order.
func (p *planner) replicated() []*unit {
	want := replicas(p.service.GetSpec())
	bySlot := map[uint64]*unit{}
	for _, t := range p.tasks {
		u := bySlot[t.GetSlot()]
		if u == nil {
			u = &unit{slot: t.GetSlot()}
			bySlot[t.GetSlot()] = u
		}
		u.tasks = append(u.tasks, t)
	}
	for _, slot := range sortedKeys(bySlot) {
		if slot == 0 || slot > want {
			p.removeUnit(bySlot[slot]) // scale down: the highest slots go
		}
	}
	live := make([]*unit, 0, want)
	for slot := uint64(1); slot <= want; slot++ {
		u := bySlot[slot]
		if u == nil {
			u = &unit{slot: slot}
		}
		p.pickCurrent(u)
		if u.current == nil {
			p.create(u, "created")
		} else {
			p.heal(u, true)
		}
		live = append(live, u)
	}
	return live
}

func sortedKeys[K interface{ ~uint64 | ~string }, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
