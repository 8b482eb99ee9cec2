# Warren build. `make build` gives bin/warren; `make test` runs every test
# (the ones needing root and containerd skip, saying why, when those are absent).

GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
PKG       := github.com/warren-project/warren
LDFLAGS   := -s -w -X $(PKG)/internal/version.Version=$(VERSION) -X $(PKG)/internal/version.GitCommit=$(COMMIT)
TOOLS     := $(CURDIR)/bin/tools
TESTFLAGS ?= -count=1 -timeout 20m

.PHONY: build test test-short lint generate tools clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/warren ./cmd/warren

test: build
	$(GO) test $(TESTFLAGS) ./...

test-short:
	$(GO) test -short $(TESTFLAGS) ./...

# The plugins' versions come from go.mod (see tools.go); protoc from Debian's
# protobuf-compiler (3.21.12). The output is committed; CI checks it matches.
tools:
	GOBIN=$(TOOLS) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go \
		google.golang.org/grpc/cmd/protoc-gen-go-grpc \
		github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-grpc-gateway

generate: tools
	PATH=$(TOOLS):$$PATH protoc -I api -I api/third_party \
		--go_out=. --go_opt=module=$(PKG) \
		--go-grpc_out=. --go-grpc_opt=module=$(PKG) \
		--grpc-gateway_out=. --grpc-gateway_opt=module=$(PKG) \
		api/warren/v1/*.proto

lint:
	$(GO) vet ./...
	GOBIN=$(TOOLS) $(GO) install honnef.co/go/tools/cmd/staticcheck@v0.8.2
	$(TOOLS)/staticcheck ./...

clean:
	rm -rf bin
