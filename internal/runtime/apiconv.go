package runtime

import (
	"github.com/distribution/reference"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/warren-project/warren/api"
)

// PullAuth returns auth's credentials when they are for ref's registry:
// credentials for another registry are never offered to this one.
func PullAuth(auth *api.RegistryAuth, ref string) *RegistryAuth {
	if auth == nil {
		return nil
	}
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil || reference.Domain(named) != auth.GetServer() {
		return nil
	}
	return &RegistryAuth{Username: auth.GetUsername(), Password: auth.GetPassword()}
}

// ImagesToAPI turns a node's images into the API's.
func ImagesToAPI(imgs []Image) []*api.Image {
	out := make([]*api.Image, 0, len(imgs))
	for _, i := range imgs {
		img := &api.Image{Ref: i.Ref, Digest: i.Digest, Size: i.Size}
		if !i.Created.IsZero() {
			img.CreatedAt = timestamppb.New(i.Created)
		}
		out = append(out, img)
	}
	return out
}
