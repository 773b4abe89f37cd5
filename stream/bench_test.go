package stream

import (
	"bytes"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	gojson "github.com/goccy/go-json"
	"github.com/klauspost/compress/gzip"
)

const benchRecords = 5000

var benchDoc = sync.OnceValues(func() (plain, gz []byte) {
	plain = genRecordsDoc(rand.New(rand.NewPCG(1, 2)), benchRecords)
	return plain, gzipBytes(nil, plain)
})

// BenchmarkGunzip is the floor: klauspost gunzip alone of the document that
// BenchmarkDecode decodes.
func BenchmarkGunzip(b *testing.B) {
	plain, gz := benchDoc()
	b.SetBytes(int64(len(plain)))
	b.ReportAllocs()
	zr, _ := gzip.NewReader(bytes.NewReader(gz))
	buf := make([]byte, 0, len(plain)+1024)
	for b.Loop() {
		if err := zr.Reset(bytes.NewReader(gz)); err != nil {
			b.Fatal(err)
		}
		w := bytes.NewBuffer(buf[:0])
		if _, err := io.Copy(w, zr); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(benchRecords*b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkDecode: gunzip and decode a gzip'd {"Records":[…]} file of
// ~1.2 KB records, one goroutine.
func BenchmarkDecode(b *testing.B) {
	plain, gz := benchDoc()
	b.SetBytes(int64(len(plain)))
	b.ReportAllocs()
	d := NewDecoder()
	dst := make([]Event, 0, benchRecords)
	for b.Loop() {
		ev, _, err := d.Decode(gz, dst[:0])
		if err != nil || len(ev) != benchRecords {
			b.Fatal(err, len(ev))
		}
	}
	b.ReportMetric(float64(benchRecords*b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(len(plain))/benchRecords, "B/record")
}

// BenchmarkDecodePlain: decode only, no gunzip.
func BenchmarkDecodePlain(b *testing.B) {
	plain, _ := benchDoc()
	b.SetBytes(int64(len(plain)))
	b.ReportAllocs()
	d := NewDecoder()
	dst := make([]Event, 0, benchRecords)
	for b.Loop() {
		if _, _, err := d.Decode(plain, dst[:0]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(benchRecords*b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkDecodeParallel: BenchmarkDecode on all cores, one Decoder per
// goroutine, as DecodeFiles runs.
func BenchmarkDecodeParallel(b *testing.B) {
	plain, gz := benchDoc()
	b.SetBytes(int64(len(plain)))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		d := NewDecoder()
		dst := make([]Event, 0, benchRecords)
		for pb.Next() {
			if _, _, err := d.Decode(gz, dst[:0]); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(benchRecords*b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkGunzipParallel: the floor on all cores.
func BenchmarkGunzipParallel(b *testing.B) {
	plain, gz := benchDoc()
	b.SetBytes(int64(len(plain)))
	b.RunParallel(func(pb *testing.PB) {
		zr, _ := gzip.NewReader(bytes.NewReader(gz))
		buf := make([]byte, 0, len(plain)+1024)
		for pb.Next() {
			_ = zr.Reset(bytes.NewReader(gz))
			w := bytes.NewBuffer(buf[:0])
			if _, err := io.Copy(w, zr); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(benchRecords*b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkGoccyNarrow is the alternative DESIGN.md measured: goccy/go-json
// into a narrow struct (plain input, no gunzip, eventTime by hand), for
// comparison with BenchmarkDecodePlain.
func BenchmarkGoccyNarrow(b *testing.B) {
	plain, _ := benchDoc()
	type narrow struct {
		EventTime          string `json:"eventTime"`
		EventSource        string `json:"eventSource"`
		EventName          string `json:"eventName"`
		ErrorCode          string `json:"errorCode"`
		EventType          string `json:"eventType"`
		EventID            string `json:"eventID"`
		AwsRegion          string `json:"awsRegion"`
		RecipientAccountID string `json:"recipientAccountId"`
		UserAgent          string `json:"userAgent"`
		EventCategory      string `json:"eventCategory"`
		ReadOnly           bool   `json:"readOnly"`
		ManagementEvent    *bool  `json:"managementEvent"`
		UserIdentity       struct {
			Arn       string `json:"arn"`
			AccountID string `json:"accountId"`
		} `json:"userIdentity"`
	}
	var doc struct{ Records []narrow }
	b.SetBytes(int64(len(plain)))
	b.ReportAllocs()
	for b.Loop() {
		doc.Records = doc.Records[:0]
		if err := gojson.Unmarshal(plain, &doc); err != nil {
			b.Fatal(err)
		}
		var sink time.Time
		for i := range doc.Records {
			sink, _ = parseTime([]byte(doc.Records[i].EventTime))
		}
		_ = sink
	}
	b.ReportMetric(float64(benchRecords*b.N)/b.Elapsed().Seconds(), "records/s")
}
