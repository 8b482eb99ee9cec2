package runtime

import (
	"fmt"

	"github.com/distribution/reference"
)

// NormalizeRef returns the fully qualified form of an image reference, as
// Docker and containerd name images: "nginx" -> "docker.io/library/nginx:latest",
// "nginx@sha256:..." keeps its digest and gets no tag. Invalid references
// give an error wrapping ErrInvalidArgument.
func NormalizeRef(ref string) (string, error) {
	if ref == "" {
		return "", fmt.Errorf("invalid image reference: empty: %w", ErrInvalidArgument)
	}
	named, err := reference.ParseDockerRef(ref)
	if err != nil {
		return "", fmt.Errorf("invalid image reference %q: %v: %w", ref, err, ErrInvalidArgument)
	}
	return named.String(), nil
}
