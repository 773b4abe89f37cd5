package stream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// memOpen serves files from memory, with a random delay so that workers
// finish out of order.
func memOpen(docs map[string][]byte) func(File) (io.ReadCloser, error) {
	return func(f File) (io.ReadCloser, error) {
		time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond)
		b, ok := docs[f.Path]
		if !ok {
			return nil, fmt.Errorf("no such file %s", f.Path)
		}
		return io.NopCloser(bytes.NewReader(b)), nil
	}
}

func TestDecodeFilesOrder(t *testing.T) {
	docs := map[string][]byte{}
	var files []File
	for i := range 300 {
		path := fmt.Sprintf("f%03d", i)
		// File i holds i%5 records named after the file; the account and
		// region come from the File.
		var b strings.Builder
		for j := range i % 5 {
			fmt.Fprintf(&b, `{"eventTime":"2024-01-02T03:04:05Z","eventSource":"s","eventName":"%s-%d","eventID":"%d-%d"}`+"\n", path, j, i, j)
		}
		switch {
		case i%37 == 0:
			docs[path] = []byte("{broken")
		case i%41 == 0: // missing: open fails
		case i%5 == 0:
			docs[path] = gzipBytes(t, []byte(`{"Records":[]}`))
		default:
			docs[path] = gzipBytes(t, []byte(b.String()))
		}
		files = append(files, File{Path: path, Account: "111122223333", Region: "eu-west-1"})
	}
	for _, workers := range []int{0, 1, 3, 8} {
		out := make(chan Batch, 2)
		errc := make(chan error, 1)
		go func() { errc <- DecodeFiles(context.Background(), files, memOpen(docs), workers, out); close(out) }()
		i := 0
		for b := range out {
			if b.File.Path != files[i].Path {
				t.Fatalf("workers=%d: batch %d is %s, want %s", workers, i, b.File.Path, files[i].Path)
			}
			switch {
			case i%37 == 0:
				var se *SyntaxError
				if !errors.As(b.Err, &se) || !strings.Contains(b.Err.Error(), files[i].Path) {
					t.Errorf("%s: err %v, want a syntax error naming the file", b.File.Path, b.Err)
				}
			case i%41 == 0:
				if b.Err == nil || !strings.Contains(b.Err.Error(), "open") {
					t.Errorf("%s: err %v, want an open error", b.File.Path, b.Err)
				}
			case i%5 == 0:
				if b.Err != nil || len(b.Events) != 0 {
					t.Errorf("%s: %v %d events", b.File.Path, b.Err, len(b.Events))
				}
			default:
				if b.Err != nil || len(b.Events) != i%5 {
					t.Fatalf("%s: err %v, %d events", b.File.Path, b.Err, len(b.Events))
				}
				for j, e := range b.Events {
					if e.Name != fmt.Sprintf("%s-%d", b.File.Path, j) || e.Account != "111122223333" || e.Region != "eu-west-1" {
						t.Fatalf("%s: event %d = %+v", b.File.Path, j, e)
					}
				}
			}
			b.Release()
			i++
		}
		if err := <-errc; err != nil || i != len(files) {
			t.Fatalf("workers=%d: %v after %d batches", workers, err, i)
		}
	}
}

func TestDecodeFilesCancel(t *testing.T) {
	docs := map[string][]byte{}
	var files []File
	for i := range 100 {
		p := fmt.Sprint(i)
		docs[p] = []byte(`{"eventTime":"2024-01-02T03:04:05Z","eventSource":"s","eventName":"n"}`)
		files = append(files, File{Path: p})
	}
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan Batch)
	errc := make(chan error, 1)
	go func() { errc <- DecodeFiles(ctx, files, memOpen(docs), 2, out) }()
	for range 10 {
		<-out
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// TestDecodeFilesFromDir runs ListDir and DecodeFiles on the real samples.
func TestDecodeFilesFromDir(t *testing.T) {
	files, skipped, err := ListDir(samplesDir, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if skipped[SkipNotJSON] == 0 {
		t.Errorf("skipped %v: README.md and the key list should be skipped", skipped)
	}
	out := make(chan Batch, len(files))
	if err := DecodeFiles(context.Background(), files, OpenFile, 2, out); err != nil {
		t.Fatal(err)
	}
	close(out)
	events, failed := 0, 0
	for b := range out {
		events += len(b.Events)
		if b.Err != nil {
			failed++
		}
	}
	// 3 files fail: the broken stratus file and the two digests. LICENSES
	// files have no JSON extension but NOTICE/licence texts are .txt.
	if failed != 3 || events != 40 {
		t.Errorf("%d events, %d failed files", events, failed)
	}
}

func TestOpenFileMissing(t *testing.T) {
	_, err := OpenFile(File{Path: filepath.Join(t.TempDir(), "x")})
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
}
