package baseline

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func sampleEntries(n int) []Entry {
	out := make([]Entry, n)
	for i := range out {
		e := &out[i]
		e.Key = Key{Account: fmt.Sprintf("%012d", 100000000000+i%50), Region: "us-east-1", Source: "ec2.amazonaws.com",
			Name: fmt.Sprintf("Api%d", i), Measure: Measure(i % 2)}
		if e.Key.Measure == Errors {
			e.Key.ErrorCode = "AccessDenied"
		}
		mon := int64(29540160) // 2026-03-02T00:00Z in minutes
		for h := 0; h < 200; h++ {
			e.Model.ObserveHour(mon+int64(h)*60, float64((h*7+i)%50), float64((h*13+i)%400), h%17 == 0)
		}
		for t := int64(0); t < 40; t++ {
			e.Model.ObserveActive(mon+t*60+int64(i%5), true)
		}
		for h := range e.Hours {
			e.Hours[h] = uint32((h * i) % 97)
		}
		e.LastHour = mon/60 + 200
	}
	return out
}

func TestSaveLoadRoundTrip(t *testing.T) {
	want := sampleEntries(300)
	meta := Meta{From: time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 3, 10, 8, 0, 0, 0, time.UTC)}
	path := filepath.Join(t.TempDir(), "model.tsm")
	if err := SaveFile(path, meta, want); err != nil {
		t.Fatal(err)
	}
	gotMeta, got, err := LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if gotMeta != meta {
		t.Errorf("meta = %+v, want %+v", gotMeta, meta)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("round trip (-want +got):\n%s", d)
	}
}

func TestLoadRejectsDamage(t *testing.T) {
	var buf bytes.Buffer
	if err := Save(&buf, Meta{}, sampleEntries(3)); err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes()
	tests := []struct {
		name string
		data []byte
		is   error
	}{
		{"empty", nil, ErrFormat},
		{"not gzip", []byte("hello"), ErrFormat},
		{"truncated", good[:len(good)/2], nil},
	}
	for _, tc := range tests {
		_, _, err := Load(bytes.NewReader(tc.data))
		if err == nil || (tc.is != nil && !errors.Is(err, tc.is)) {
			t.Errorf("%s: Load = %v, want an error (is %v)", tc.name, err, tc.is)
		}
	}
	// A flipped byte inside the compressed body fails the gzip or our CRC.
	bad := bytes.Clone(good)
	bad[len(bad)/2] ^= 0x40
	if _, _, err := Load(bytes.NewReader(bad)); err == nil {
		t.Error("Load of a damaged file succeeded")
	}
}

// TestModelSize: a saved series stays under the 2 KB the design allows.
func TestModelSize(t *testing.T) {
	const n = 2000
	var buf bytes.Buffer
	if err := Save(&buf, Meta{}, sampleEntries(n)); err != nil {
		t.Fatal(err)
	}
	if per := buf.Len() / n; per > 2048 {
		t.Errorf("%d bytes per series on disk, want ≤ 2048", per)
	}
	t.Logf("%d bytes per series on disk (gzip'd)", buf.Len()/n)
}

// BenchmarkLoad100k loads a 100,000-series model (target: well under a second).
func BenchmarkLoad100k(b *testing.B) {
	var buf bytes.Buffer
	if err := Save(&buf, Meta{}, sampleEntries(100_000)); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, e, err := Load(bytes.NewReader(buf.Bytes())); err != nil || len(e) != 100_000 {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(buf.Len())/100_000, "bytes/series")
}

func FuzzLoad(f *testing.F) {
	var buf bytes.Buffer
	Save(&buf, Meta{}, sampleEntries(2))
	f.Add(buf.Bytes())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		meta, entries, err := Load(bytes.NewReader(data))
		if err != nil {
			return
		}
		var out bytes.Buffer
		if err := Save(&out, meta, entries); err != nil {
			t.Fatalf("re-save: %v", err)
		}
		_, again, err := Load(&out)
		if err != nil || !cmp.Equal(entries, again) {
			t.Fatalf("re-load differs: %v", err)
		}
	})
}
