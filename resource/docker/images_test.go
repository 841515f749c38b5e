package docker

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
)

// Test images, made by images/build.sh from busybox-static (no registry).
const (
	imgBusybox    = "occopus/busybox"
	imgHelloworld = "occopus/busybox-helloworld"
	imgPing       = "occopus/busybox-ping"
)

var (
	imagesOnce sync.Once
	imagesErr  error
)

// imagesDir is the repo's images/ folder, found from this file's path.
func imagesDir(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate images/ from the test source")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "images")
}

// tarball returns the rootfs tarball of a test image, e.g. "busybox".
func tarball(t *testing.T, name string) string {
	t.Helper()
	return filepath.Join(imagesDir(t), "out", name+".tar")
}

// ensureImages writes the tarballs with images/build.sh (once per test
// binary) and imports the images that are missing through the Engine API,
// so the tests need no docker CLI.
func ensureImages(t *testing.T, cli *client.Client) {
	t.Helper()
	imagesOnce.Do(func() {
		cmd := exec.Command("sh", filepath.Join(imagesDir(t), "build.sh"))
		cmd.Env = append(os.Environ(), "NO_DOCKER=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			imagesErr = &buildError{err: err, out: string(out)}
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		for name, cmdJSON := range map[string]string{
			imgBusybox:    `["/bin/sh"]`,
			imgHelloworld: `["/root/start.sh"]`,
			imgPing:       `["/root/start.sh"]`,
		} {
			ref := name + ":latest"
			if _, err := cli.ImageInspect(ctx, ref); err == nil {
				continue
			} else if !cerrdefs.IsNotFound(err) {
				imagesErr = err
				return
			}
			f, err := os.Open(tarball(t, filepath.Base(name)))
			if err != nil {
				imagesErr = err
				return
			}
			rc, err := cli.ImageImport(ctx, image.ImportSource{Source: f, SourceName: "-"}, ref,
				image.ImportOptions{Changes: []string{"CMD " + cmdJSON, "WORKDIR /root"}})
			if err == nil {
				err = drainJSONStream(rc)
				rc.Close()
			}
			f.Close()
			if err != nil {
				imagesErr = err
				return
			}
		}
	})
	if imagesErr != nil {
		t.Fatalf("building test images: %v", imagesErr)
	}
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return "images/build.sh: " + e.err.Error() + "\n" + e.out }
