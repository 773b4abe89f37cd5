package stream

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
)

// Test helpers: a generator of realistic records and a reference decoder on
// encoding/json for the differential tests.

var (
	genSources = []string{"ec2.amazonaws.com", "s3.amazonaws.com", "iam.amazonaws.com", "sts.amazonaws.com",
		"lambda.amazonaws.com", "kms.amazonaws.com", "autoscaling.amazonaws.com", "ssm.amazonaws.com"}
	genNames = []string{"RunInstances", "DescribeInstances", "PutObject", "AssumeRole", "CreateRole",
		"Decrypt", "UpdateInstanceInformation", "CompleteLifecycleAction", "TerminateInstances"}
	genAgents = []string{"aws-cli/2.15.30 Python/3.11.8 Linux/6.1.79 exe/x86_64.amzn.2023 prompt/off command/ec2.run-instances",
		"Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#5.10.213 md/arch#x86_64 lang/python#3.12.2 cfg/retry-mode#legacy Botocore/1.34.69",
		"autoscaling.amazonaws.com", "console.amazonaws.com", "aws-sdk-go-v2/1.26.0 os/linux lang/go#1.22.1 md/GOOS#linux api/ec2#1.152.0"}
	genErrors  = []string{"", "", "", "", "", "", "AccessDenied", "ThrottlingException", "Client.RequestLimitExceeded"}
	genRegions = []string{"us-east-1", "eu-west-1", "ap-southeast-2"}
)

func genID(r *rand.Rand) string {
	return fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", r.Uint32(), r.Uint32()&0xffff, r.Uint32()&0xfff,
		0x8000|r.Uint32()&0x3fff, r.Uint64()&0xffffffffffff)
}

// genRecord returns a realistic record of about 1.2 KB as JSON.
func genRecord(r *rand.Rand, t time.Time) map[string]any {
	acct := fmt.Sprintf("1111222233%02d", r.IntN(4))
	role := fmt.Sprintf("role-%d", r.IntN(20))
	ec := genErrors[r.IntN(len(genErrors))]
	rec := map[string]any{
		"eventVersion": "1.09",
		"userIdentity": map[string]any{
			"type":        "AssumedRole",
			"principalId": "AROAEXAMPLE" + strings.ToUpper(role) + ":session",
			"arn":         "arn:aws:sts::" + acct + ":assumed-role/" + role + "/session",
			"accountId":   acct,
			"accessKeyId": fmt.Sprintf("ASIA%016X", r.Uint64()),
			"sessionContext": map[string]any{
				"sessionIssuer": map[string]any{"type": "Role", "principalId": "AROAEXAMPLE",
					"arn": "arn:aws:iam::" + acct + ":role/" + role, "accountId": acct, "userName": role},
				"attributes": map[string]any{"creationDate": t.Add(-time.Hour).Format(time.RFC3339), "mfaAuthenticated": "false"},
			},
		},
		"eventTime":       t.UTC().Format(time.RFC3339),
		"eventSource":     genSources[r.IntN(len(genSources))],
		"eventName":       genNames[r.IntN(len(genNames))],
		"awsRegion":       genRegions[r.IntN(len(genRegions))],
		"sourceIPAddress": fmt.Sprintf("10.%d.%d.%d", r.IntN(256), r.IntN(256), r.IntN(256)),
		"userAgent":       genAgents[r.IntN(len(genAgents))],
		"requestParameters": map[string]any{
			"instancesSet": map[string]any{"items": []any{map[string]any{"instanceId": fmt.Sprintf("i-%017x", r.Uint64()>>4)}}},
			"filterSet":    map[string]any{},
			"maxResults":   r.IntN(1000),
			"dryRun":       false,
		},
		"responseElements":   nil,
		"requestID":          genID(r),
		"eventID":            genID(r),
		"readOnly":           r.IntN(3) == 0,
		"eventType":          "AwsApiCall",
		"managementEvent":    true,
		"recipientAccountId": acct,
		"eventCategory":      "Management",
		"tlsDetails": map[string]any{"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256",
			"clientProvidedHostHeader": "ec2." + genRegions[0] + ".amazonaws.com"},
	}
	if ec != "" {
		rec["errorCode"] = ec
		rec["errorMessage"] = "You are not authorized to perform this operation. Encoded authorization failure message: " + genID(r)
	}
	return rec
}

// genRecordsDoc returns a {"Records":[…]} document of n records, compact.
func genRecordsDoc(r *rand.Rand, n int) []byte {
	recs := make([]any, n)
	t0 := time.Date(2024, 3, 4, 5, 0, 0, 0, time.UTC)
	for i := range recs {
		recs[i] = genRecord(r, t0.Add(time.Duration(r.IntN(300))*time.Second))
	}
	b, err := json.Marshal(map[string]any{"Records": recs})
	if err != nil {
		panic(err)
	}
	return b
}

func gzipBytes(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// mutateRecord makes a generated record odd in the ways real ones are:
// missing or null fields, readOnly as a string, escapes and non-ASCII,
// unknown nested keys, other time formats, Insights and envelope fields.
func mutateRecord(r *rand.Rand, rec map[string]any) {
	keys := []string{"eventTime", "eventSource", "eventName", "errorCode", "eventType", "eventID", "awsRegion",
		"recipientAccountId", "userAgent", "eventCategory", "readOnly", "managementEvent", "userIdentity", "eventVersion"}
	for range r.IntN(4) {
		k := keys[r.IntN(len(keys))]
		switch r.IntN(3) {
		case 0:
			delete(rec, k)
		case 1:
			rec[k] = nil
		case 2:
			if _, ok := rec[k].(string); ok {
				rec[k] = ""
			}
		}
	}
	switch r.IntN(8) {
	case 0:
		rec["readOnly"] = []string{"true", "false", "yes"}[r.IntN(3)]
	case 1:
		rec["userAgent"] = "Mozilla/5.0 <b>&\"quoted\"\\ \u00e9\u4e2d\U0001F600 \t\n"
	case 2:
		rec["eventTime"] = []string{"2024-03-04T05:06:07.123Z", "2024-03-04T07:06:07+02:00", "2024-02-30T00:00:00Z",
			"not a time", "2024-03-04 05:06:07", "0000-01-01T00:00:00Z", "2024-12-31T23:59:60Z"}[r.IntN(7)]
	case 3:
		rec["extra"] = map[string]any{"a": []any{1.5e300, -0.0, "x", nil, true, map[string]any{"deep": []any{[]any{}}}}}
	case 4:
		rec["eventCategory"] = []string{"Data", "Insight", "NetworkActivity", "Weird"}[r.IntN(4)]
	case 5:
		rec["managementEvent"] = r.IntN(2) == 0
		delete(rec, "eventCategory")
	case 6:
		delete(rec, "eventSource")
		delete(rec, "eventName")
		rec["insightDetails"] = map[string]any{"eventSource": "ssm.amazonaws.com", "eventName": "Send\u0000Command", "errorCode": "AccessDenied"}
	case 7:
		rec["http"] = map[string]any{"useragent": "datadog-agent"}
		delete(rec, "userAgent")
	}
	if r.IntN(10) == 0 {
		ui, _ := rec["userIdentity"].(map[string]any)
		if ui != nil {
			ui["arn"] = nil
			delete(ui, "accountId")
		}
	}
}

// ---- reference decoder (encoding/json) ----

type refRecord struct {
	EventTime          *string `json:"eventTime"`
	EventSource        *string `json:"eventSource"`
	EventName          *string `json:"eventName"`
	ErrorCode          *string `json:"errorCode"`
	EventType          *string `json:"eventType"`
	EventID            *string `json:"eventID"`
	AwsRegion          *string `json:"awsRegion"`
	RecipientAccountID *string `json:"recipientAccountId"`
	UserAgent          *string `json:"userAgent"`
	EventCategory      *string `json:"eventCategory"`
	ReadOnly           any     `json:"readOnly"`
	ManagementEvent    any     `json:"managementEvent"`
	UserIdentity       *struct {
		Arn       *string `json:"arn"`
		AccountID *string `json:"accountId"`
	} `json:"userIdentity"`
	InsightDetails *struct {
		EventSource *string `json:"eventSource"`
		EventName   *string `json:"eventName"`
		ErrorCode   *string `json:"errorCode"`
	} `json:"insightDetails"`
	HTTP *struct {
		UserAgent *string `json:"useragent"`
	} `json:"http"`
}

func sv(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

type refDecoder struct {
	events []Event
	st     DocStats
}

func (rd *refDecoder) bad(reason string) {
	rd.st.BadRecords++
	if rd.st.BadReason == "" {
		rd.st.BadReason = reason
	}
}

var recordKeys = []string{"eventTime", "eventSource", "eventName", "eventID", "eventType", "eventVersion"}

func isRecordObject(m map[string]json.RawMessage) bool {
	for _, k := range recordKeys {
		if _, ok := m[k]; ok {
			return true
		}
	}
	if id, ok := m["insightDetails"]; ok {
		var x struct {
			S *string `json:"eventSource"`
			N *string `json:"eventName"`
		}
		if json.Unmarshal(id, &x) == nil && (x.S != nil || x.N != nil) {
			return true
		}
	}
	return false
}

// record decodes one record object; envAccount/envRegion are envelope
// fallbacks (nil when none).
func (rd *refDecoder) record(raw json.RawMessage, envAccount, envRegion *string) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return err
	}
	var r refRecord
	if err := json.Unmarshal(raw, &r); err != nil {
		return err
	}
	if !isRecordObject(m) {
		rd.bad("not a CloudTrail record")
		return nil
	}
	src, name, ec := r.EventSource, r.EventName, r.ErrorCode
	if r.InsightDetails != nil {
		if sv(src) == "" {
			src = r.InsightDetails.EventSource
		}
		if sv(name) == "" {
			name = r.InsightDetails.EventName
		}
		if ec == nil {
			ec = r.InsightDetails.ErrorCode
		}
	}
	if r.EventTime == nil {
		rd.bad("no eventTime")
		return nil
	}
	var t time.Time
	tt, err := time.Parse(time.RFC3339, *r.EventTime)
	if err != nil {
		rd.bad("bad eventTime")
		return nil
	}
	t = tt.UTC().Truncate(time.Second)
	if sv(src) == "" {
		rd.bad("no eventSource")
		return nil
	}
	if sv(name) == "" {
		rd.bad("no eventName")
		return nil
	}
	var arn, uiAcct *string
	if r.UserIdentity != nil {
		arn, uiAcct = r.UserIdentity.Arn, r.UserIdentity.AccountID
	}
	recip := r.RecipientAccountID
	if recip == nil && uiAcct == nil {
		recip = envAccount
	}
	acct := sv(recip)
	if acct == "" {
		acct = sv(uiAcct)
	}
	region := r.AwsRegion
	if region == nil {
		region = envRegion
	}
	agent := r.UserAgent
	if agent == nil && r.HTTP != nil {
		agent = r.HTTP.UserAgent
	}
	e := Event{Time: t, Account: acct, Region: sv(region), Source: sv(src), Name: sv(name), ErrorCode: sv(ec),
		Type: sv(r.EventType), ID: sv(r.EventID), UserArn: sv(arn), UserAgent: sv(agent)}
	switch v := r.ReadOnly.(type) {
	case bool:
		e.ReadOnly = v
	case string:
		e.ReadOnly = v == "true"
	}
	mg := -1
	switch v := r.ManagementEvent.(type) {
	case bool:
		mg = map[bool]int{false: 0, true: 1}[v]
	case string:
		mg = map[string]int{"false": 0, "true": 1}[v]
		if v != "true" && v != "false" {
			mg = -1
		}
	}
	switch {
	case r.EventCategory != nil:
		e.Category = map[string]Category{"Management": Management, "Data": Data, "Insight": Insight,
			"NetworkActivity": NetworkActivity}[*r.EventCategory]
		if _, ok := map[string]bool{"Management": true, "Data": true, "Insight": true, "NetworkActivity": true}[*r.EventCategory]; !ok {
			e.Category = OtherCategory
		}
	case mg == 0:
		e.Category = Data
	default:
		e.Category = Management
	}
	rd.events = append(rd.events, e)
	return nil
}

// top decodes one top-level object; it reports whether it was CloudTrail.
func (rd *refDecoder) top(raw json.RawMessage) (bool, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return false, err
	}
	for _, k := range []string{"Records", "Events"} {
		if v, ok := m[k]; ok {
			var arr []json.RawMessage
			if err := json.Unmarshal(v, &arr); err == nil && (arr != nil || string(v) == "null") {
				for _, el := range arr {
					rd.st.Records++
					if len(el) == 0 || el[0] != '{' {
						rd.bad("record is not an object")
						continue
					}
					if err := rd.record(el, nil, nil); err != nil {
						return false, err
					}
				}
				return true, nil
			}
		}
	}
	if det, ok := m["detail"]; ok && len(det) > 0 && det[0] == '{' {
		var dm map[string]json.RawMessage
		if err := json.Unmarshal(det, &dm); err != nil {
			return false, err
		}
		if isRecordObject(dm) {
			var env struct {
				Account *string `json:"account"`
				Region  *string `json:"region"`
			}
			_ = json.Unmarshal(raw, &env)
			rd.st.Records++
			return true, rd.record(det, env.Account, env.Region)
		}
	}
	if isRecordObject(m) {
		rd.st.Records++
		return true, rd.record(raw, nil, nil)
	}
	return false, nil
}

// refDecode decodes plain JSON the way Decode should, with encoding/json.
func refDecode(data []byte) ([]Event, DocStats, error) {
	rd := &refDecoder{}
	dec := json.NewDecoder(bytes.NewReader(data))
	values, nonCT, sawCT := 0, 0, false
	for {
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return rd.events, rd.st, err
		}
		values++
		switch v[0] {
		case '{':
			ct, err := rd.top(v)
			if err != nil {
				return nil, rd.st, err
			}
			if ct {
				sawCT = true
			} else {
				nonCT++
			}
		case '[':
			var arr []json.RawMessage
			_ = json.Unmarshal(v, &arr)
			for _, el := range arr {
				ct := false
				if el[0] == '{' {
					var err error
					if ct, err = rd.top(el); err != nil {
						return nil, rd.st, err
					}
				}
				if ct {
					sawCT = true
				} else {
					nonCT++
				}
			}
		default:
			nonCT++
		}
	}
	if !sawCT {
		return nil, DocStats{}, ErrNotCloudTrail
	}
	for range nonCT {
		rd.st.Records++
		rd.bad("not a CloudTrail record")
	}
	rd.st.Bytes = int64(len(data))
	return rd.events, rd.st, nil
}
