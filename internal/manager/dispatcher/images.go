package dispatcher

import (
	"log/slog"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/state"
)

// imageSet decides which imported image archives one node is told to load:
// those aimed at it whose images it does not report holding, and any
// archive imported while the session is open, even when the node holds
// images of those names (a re-import of a tag with new content must reach
// the nodes holding the old one). The archive's holder imported it itself,
// so a new archive is not sent to it.
//
// An archive is sent at most once per session: the node retries a failed
// load itself, and a new session starts over.
type imageSet struct {
	nodeID   string
	held     map[string]bool     // refs the node reports holding
	known    map[string]bool     // digests of the archives last seen
	sent     map[string]bool     // digests sent in this session
	archives []*api.ImageArchive // as last seen; may be shared with events: read-only
}

func newImageSet(nodeID string) *imageSet {
	return &imageSet{nodeID: nodeID, held: map[string]bool{}, known: map[string]bool{}, sent: map[string]bool{}}
}

// concerns filters store events down to the cluster (its archives) and the
// node itself (its images).
func (s *imageSet) concerns(ev state.Event) bool {
	switch o := ev.Object.(type) {
	case *api.Cluster:
		return true
	case *api.Node:
		return o.GetId() == s.nodeID
	}
	return false
}

// start takes the session's first view and returns what the node must load.
func (s *imageSet) start(tx state.ReadTx) []*api.ImageArchive {
	s.setHeld(tx.GetNode(s.nodeID))
	s.setArchives(tx.GetCluster().GetImageArchives())
	return s.due(nil)
}

// observe takes a change of the cluster or the node and returns the
// archives the node must now be told about.
func (s *imageSet) observe(ev state.Event) []*api.ImageArchive {
	switch o := ev.Object.(type) {
	case *api.Cluster:
		if ev.Kind == state.EventDelete {
			s.setArchives(nil)
			return nil
		}
		return s.due(s.setArchives(o.GetImageArchives()))
	case *api.Node:
		if ev.Kind == state.EventDelete {
			return nil // the session ends with the node
		}
		s.setHeld(o)
		return s.due(nil)
	}
	return nil
}

// resync reads everything again after the store was restored.
func (s *imageSet) resync(tx state.ReadTx) []*api.ImageArchive {
	s.setHeld(tx.GetNode(s.nodeID))
	return s.due(s.setArchives(tx.GetCluster().GetImageArchives()))
}

// setArchives records the cluster's archives and returns the digests that
// are new since the last look.
func (s *imageSet) setArchives(archives []*api.ImageArchive) map[string]bool {
	fresh := map[string]bool{}
	known := make(map[string]bool, len(archives))
	for _, a := range archives {
		if !s.known[a.GetDigest()] {
			fresh[a.GetDigest()] = true
		}
		known[a.GetDigest()] = true
	}
	s.archives, s.known = archives, known
	return fresh
}

func (s *imageSet) setHeld(n *api.Node) {
	clear(s.held)
	for _, img := range n.GetDescription().GetImages() {
		s.held[img.GetRef()] = true
	}
}

// due returns the archives to send now; fresh are the newly imported ones.
func (s *imageSet) due(fresh map[string]bool) []*api.ImageArchive {
	var out []*api.ImageArchive
	for _, a := range s.archives {
		d := a.GetDigest()
		if s.sent[d] || !targets(a, s.nodeID) {
			continue
		}
		mine := a.GetHolderNodeId() == s.nodeID
		if fresh[d] && mine {
			// The holder imported it in the write that recorded it, whose
			// update of the node's images may come as the next event.
			continue
		}
		if (fresh[d] && !mine) || !s.holdsAll(a.GetRefs()) {
			s.sent[d] = true
			out = append(out, a)
		}
	}
	return out
}

func (s *imageSet) holdsAll(refs []string) bool {
	for _, r := range refs {
		if !s.held[r] {
			return false
		}
	}
	return true
}

// targets tells whether archive a is aimed at nodeID.
func targets(a *api.ImageArchive, nodeID string) bool {
	return len(a.GetNodeIds()) == 0 || slices.Contains(a.GetNodeIds(), nodeID)
}

func sendLoads(send func(*api.SessionMessage) error, loads []*api.ImageArchive) error {
	for _, a := range loads {
		if err := send(&api.SessionMessage{Msg: &api.SessionMessage_LoadImage{LoadImage: a}}); err != nil {
			return err
		}
	}
	return nil
}

// recordImages writes the images a node reports into its description, in
// one write, and only when they changed.
func (d *Dispatcher) recordImages(s *session, images []*api.Image, log *slog.Logger) {
	images = cleanImages(images)
	err := d.store.Update(s.ctx, func(tx state.Tx) error {
		n := tx.GetNode(s.nodeID)
		if n == nil || imagesEqual(n.GetDescription().GetImages(), images) {
			return nil
		}
		if n.Description == nil {
			n.Description = &api.NodeDescription{}
		}
		n.Description.Images = images
		return tx.Update(n)
	})
	if err != nil && s.ctx.Err() == nil {
		// The node reports its images again after its next change, and
		// registers with them on its next session.
		log.Warn("cannot record the node's images", "err", err)
	}
}

// cleanImages copies what a node reports into the form stored: sorted by
// ref, one entry per ref, and without node IDs (which only listings fill).
func cleanImages(in []*api.Image) []*api.Image {
	out := make([]*api.Image, 0, len(in))
	seen := map[string]bool{}
	for _, img := range in {
		if img.GetRef() == "" || seen[img.GetRef()] {
			continue
		}
		seen[img.GetRef()] = true
		c := proto.Clone(img).(*api.Image)
		c.NodeIds = nil
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b *api.Image) int { return strings.Compare(a.GetRef(), b.GetRef()) })
	return out
}

func imagesEqual(a, b []*api.Image) bool {
	return slices.EqualFunc(a, b, func(x, y *api.Image) bool { return proto.Equal(x, y) })
}
