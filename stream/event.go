// Package stream turns raw CloudTrail documents into compact Events.
//
// It knows the shapes AWS writes — {"Records":[…]} log files (gzip or plain,
// sniffed by content), one record per line, and EventBridge envelopes whose
// "detail" holds the record — and the sources that yield them: a folder in
// the S3 layout (AWSLogs/…), walked in the time order of its key names and
// decoded in parallel, an S3 bucket in the same layout (ListS3, S3Opener:
// listed by date prefix, never flat), a NATS JetStream stream (NATSSource,
// a durable pull consumer), and standard input. It also drops
// duplicate records (same eventID) with bounded memory. For a stream split
// into partitions by the server (PartitionTransform), it holds what lets
// instances share them: leases in a key-value bucket (Lease) and
// checkpoints, opaque blobs, in JetStream (NATSState). It knows nothing of
// detection.
package stream

import "time"

// Category is a CloudTrail eventCategory.
type Category uint8

// Categories, as CloudTrail names them in eventCategory.
const (
	Management Category = iota
	Data
	Insight
	NetworkActivity
	OtherCategory
)

// String returns the name CloudTrail uses for c.
func (c Category) String() string {
	switch c {
	case Management:
		return "Management"
	case Data:
		return "Data"
	case Insight:
		return "Insight"
	case NetworkActivity:
		return "NetworkActivity"
	case OtherCategory:
		return "Other"
	}
	panic("stream: unknown Category")
}

// Event is the part of a CloudTrail record that detection needs. It is a
// small value: copy it, do not share pointers to it. Its strings may be
// interned by the decoder (equal strings share memory); they are never
// mutated.
type Event struct {
	Time      time.Time // eventTime, UTC, whole seconds
	Account   string    // recipientAccountId, else userIdentity.accountId
	Region    string    // awsRegion
	Source    string    // eventSource, e.g. "ec2.amazonaws.com"
	Name      string    // eventName, e.g. "RunInstances"
	ErrorCode string    // errorCode; "" when the call succeeded
	Type      string    // eventType: AwsApiCall, AwsServiceEvent, AwsConsoleAction, AwsConsoleSignIn, AwsCloudTrailInsight…
	ID        string    // eventID
	UserArn   string    // userIdentity.arn; "" when absent
	UserAgent string    // userAgent; "" when absent
	ReadOnly  bool      // readOnly; records without it count as not read-only
	Category  Category  // eventCategory; from managementEvent, else Management, for older records
}

// IsWriteManagement reports whether e counts towards ApiCallRateInsight:
// a management event that is not read-only and is an API call or a service
// event (not an Insights event itself).
func (e *Event) IsWriteManagement() bool {
	return e.Category == Management && !e.ReadOnly && e.Type != "AwsCloudTrailInsight"
}

// IsManagementError reports whether e counts towards ApiErrorRateInsight:
// a management call, read or write, whose errorCode is set.
func (e *Event) IsManagementError() bool {
	return e.Category == Management && e.ErrorCode != "" && e.Type != "AwsCloudTrailInsight"
}
