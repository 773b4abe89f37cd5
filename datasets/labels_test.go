package datasets

import (
	"strings"
	"testing"
)

func TestParseLabels(t *testing.T) {
	good := `{"scenario":"x","seed":1,"start":"2026-03-02T00:00:00Z","end":"2026-03-16T00:00:00Z","labels":[
 {"kind":"burst","insightType":"ApiCallRateInsight","account":"111122223333","region":"us-east-1","eventSource":"ec2.amazonaws.com","eventName":"CreateTags","start":"2026-03-10T10:00:00Z","end":"2026-03-10T10:10:00Z"},
 {"kind":"decoy-holiday","account":"111122223333","region":"us-east-1","start":"2026-03-11T00:00:00Z","end":"2026-03-12T00:00:00Z","decoy":true}]}`
	l, err := ParseLabels([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Labels) != 2 || l.Labels[0].EventName != "CreateTags" || !l.Labels[1].Decoy {
		t.Errorf("ParseLabels = %+v", l)
	}
	bad := []struct{ name, in, want string }{
		{"unknown field", `{"labels":[],"extra":1}`, "unknown field"},
		{"unknown kind", `{"labels":[{"kind":"spike","account":"1","start":"2026-03-10T10:00:00Z","end":"2026-03-10T10:10:00Z"}]}`, "unknown kind"},
		{"decoy flag", `{"labels":[{"kind":"decoy-growth","account":"1","start":"2026-03-10T10:00:00Z","end":"2026-03-10T10:10:00Z"}]}`, "decoy=false"},
		{"empty span", `{"labels":[{"kind":"gap","account":"1","start":"2026-03-10T10:00:00Z","end":"2026-03-10T10:00:00Z"}]}`, "not after"},
		{"no account", `{"labels":[{"kind":"gap","start":"2026-03-10T10:00:00Z","end":"2026-03-10T10:10:00Z"}]}`, "no account"},
		{"insight type", `{"labels":[{"kind":"gap","insightType":"Foo","account":"1","start":"2026-03-10T10:00:00Z","end":"2026-03-10T10:10:00Z"}]}`, "insight type"},
		{"syntax", `{"labels":[`, "decode labels"},
	}
	for _, tc := range bad {
		if _, err := ParseLabels([]byte(tc.in)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: ParseLabels error = %v, want one containing %q", tc.name, err, tc.want)
		}
	}
	if _, err := ReadLabels("testdata/absent.json"); err == nil {
		t.Error("ReadLabels(absent) succeeded")
	}
}

func FuzzParseLabels(f *testing.F) {
	f.Add([]byte(`{"scenario":"x","labels":[{"kind":"burst","account":"1","start":"2026-03-10T10:00:00Z","end":"2026-03-10T10:10:00Z"}]}`))
	f.Add([]byte(`{"labels":[{"kind":"decoy-weekly","decoy":true,"account":"1","start":"2026-03-10T10:00:00Z","end":"2026-03-11T10:10:00Z"}]}`))
	f.Add([]byte(`{"labels":null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := ParseLabels(data)
		if err != nil {
			return
		}
		if err := l.Validate(); err != nil {
			t.Fatalf("ParseLabels accepted labels that Validate rejects: %v", err)
		}
		for _, lb := range l.Labels {
			if !lb.End.After(lb.Start) {
				t.Fatalf("accepted empty span %+v", lb)
			}
		}
	})
}
