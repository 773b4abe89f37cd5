package stream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestReadStream(t *testing.T) {
	read := func(t *testing.T, name string) []byte {
		b, err := os.ReadFile(filepath.Join(samplesDir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var in bytes.Buffer
	in.Write(read(t, "derived/secretsmanager-records.jsonl"))                                                     // 10 JSON lines
	in.Write(read(t, "awsdocs-s3-user-guide/s3-management-events-records.json"))                                  // 3, pretty
	in.WriteString("\n{not json at all\n")                                                                        // bad line
	in.Write(read(t, "derived/eventbridge-envelopes.jsonl"))                                                      // 5 envelopes
	in.WriteString(`{"Records":[{"eventTime":"2024-01-02T03:04:05Z","eventSource":"s","eventName":"n"}]}` + "\n") // 1, compact
	in.WriteString("{\"digest\":true}\n")                                                                         // not CloudTrail

	for _, gz := range []bool{false, true} {
		data := in.Bytes()
		if gz {
			data = gzipBytes(t, data)
		}
		var total DocStats
		events := 0
		err := ReadStream(context.Background(), bytes.NewReader(data), func(ev []Event, st DocStats) error {
			events += len(ev)
			total.Records += st.Records
			total.BadRecords += st.BadRecords
			if total.BadReason == "" {
				total.BadReason = st.BadReason
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if events != 19 || total.BadRecords != 2 || total.Records != 21 {
			t.Errorf("gzip=%v: %d events, stats %+v", gz, events, total)
		}
	}
}

// TestReadStreamChunks: a long stream is handed over in chunks of at most
// ChunkSize, and fn's error stops it.
func TestReadStreamChunks(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	var in bytes.Buffer
	n := 3*ChunkSize + 17
	t0 := time.Date(2024, 3, 4, 5, 0, 0, 0, time.UTC)
	for range n {
		b, _ := json.Marshal(genRecord(r, t0))
		in.Write(b)
		in.WriteByte('\n')
	}
	got, calls := 0, 0
	err := ReadStream(context.Background(), bytes.NewReader(in.Bytes()), func(ev []Event, st DocStats) error {
		if len(ev) > ChunkSize+8 {
			t.Errorf("chunk of %d events", len(ev))
		}
		got += len(ev)
		calls++
		return nil
	})
	if err != nil || got != n || calls < 3 {
		t.Fatalf("err %v, %d events in %d calls", err, got, calls)
	}
	stop := errors.New("stop")
	err = ReadStream(context.Background(), bytes.NewReader(in.Bytes()), func([]Event, DocStats) error { return stop })
	if !errors.Is(err, stop) {
		t.Fatalf("err = %v, want stop", err)
	}
}

// TestReadStreamPause: events are handed over when the input pauses, not
// held until a chunk is full.
func TestReadStreamPause(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	got := make(chan int, 10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- ReadStream(ctx, pr, func(ev []Event, st DocStats) error {
			got <- len(ev)
			return nil
		})
	}()
	line := `{"eventTime":"2024-01-02T03:04:05Z","eventSource":"s","eventName":"n"}` + "\n"
	if _, err := pw.Write([]byte(line + line)); err != nil {
		t.Fatal(err)
	}
	n := 0
	for n < 2 {
		select {
		case k := <-got:
			n += k
		case <-time.After(10 * time.Second):
			t.Fatal("events not handed over while the input pauses")
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}

func TestFrameStream(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"JSON lines", "{\"a\":1}\n{\"b\":2}\n", []string{"{\"a\":1}", "{\"b\":2}"}},
		{"pretty documents", "{\n  \"c\": {\n    \"d\": 1\n  }\n}\n{\n  \"e\": 2\n}",
			[]string{"{\n  \"c\": {\n    \"d\": 1\n  }\n}", "{\n  \"e\": 2\n}"}},
		// CloudTrail files have no final newline: cat of several is
		// "}{"-joined, one document per file.
		{"concatenated files", `{"Records":[{"x":"}{"}]}{"Records":[]}` + "\n" + `{"Records":[1]}`,
			[]string{`{"Records":[{"x":"}{"}]}`, `{"Records":[]}`, `{"Records":[1]}`}},
		{"spaces between documents", "{\"a\":1}  {\"b\":2}\r\n", []string{"{\"a\":1}", "{\"b\":2}"}},
		// A broken line with an unclosed brace must not swallow the next lines.
		{"resync after a broken line", "{\"a\":[1,2\n{\"b\":1}\n{\n  \"c\": {\n    \"d\": 1\n  }\n}\n",
			[]string{"{\"a\":[1,2\n", "{\"b\":1}", "{\n  \"c\": {\n    \"d\": 1\n  }\n}"}},
		{"stray text", "hello\n{\"a\":1}\n", []string{"hello\n", "{\"a\":1}"}},
		{"truncated last document", "{\"a\":1}{\"b\":[", []string{"{\"a\":1}", "{\"b\":["}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var frames []string
			err := frameStream(bytes.NewReader([]byte(tc.in)), 1<<20, func(b []byte) bool {
				frames = append(frames, string(b))
				return true
			})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(frames, tc.want) {
				t.Errorf("frames %q, want %q", frames, tc.want)
			}
		})
	}
}

// FuzzFrameStream: no panic; the frames hold the whole input but blank
// lines between documents, in order.
func FuzzFrameStream(f *testing.F) {
	f.Add([]byte("{\"a\":1}\n{\n  \"b\": [\n  ]\n}\n"))
	f.Add([]byte("{\"a\":\"}\\\"{\"\n}\n{"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b {
			return
		}
		var got []byte
		err := frameStream(bytes.NewReader(data), 1<<20, func(b []byte) bool {
			if len(b) == 0 {
				t.Fatal("empty frame")
			}
			got = append(got, b...)
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
		strip := func(b []byte) []byte {
			return bytes.Map(func(r rune) rune {
				if r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\v' || r == '\f' || r == 0x85 || r == 0xA0 {
					return -1
				}
				return r
			}, b)
		}
		if !bytes.Equal(strip(got), strip(data)) {
			t.Fatalf("frames %q from input %q", got, data)
		}
	})
}
