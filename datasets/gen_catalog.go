package datasets

// The catalog: the APIs an account calls, who calls them, and how often.
// Rates are mean calls per minute at scale 1 (the time-of-week profile is
// normalised to a mean of 1); every account jitters them.

// api is one CloudTrail API as it appears in records.
type api struct {
	source   string // eventSource
	name     string // eventName
	prefix   string // IAM action prefix, for error messages
	readOnly bool
	data     bool   // a data event (eventCategory Data, managementEvent false)
	version  string // eventVersion
	params   string // requestParameters template; "" for null
	resp     string // responseElements template; "" for null
	throttle string // the error code the service answers when rate-limited
	denied   string // the error code for a denied call
}

// profile says how a stream's rate varies over the week.
type profile uint8

const (
	flat   profile = iota // machines: a mild daily wave
	office                // people and CI: business hours, quiet nights and weekends, Monday peak
)

// who names an identity of the account (index into identities).
type who uint8

const (
	whoAdmin     who = iota // a person through SSO, in the console
	whoDev                  // a person through SSO, with the CLI
	whoCI                   // an IAM user with access keys (CI pipeline, Terraform)
	whoApp                  // an application role on EC2/ECS (SDK for Go)
	whoLambda               // a Lambda execution role (boto3)
	whoSSM                  // EC2 instance profile used by the SSM agent
	whoMonitor              // a third-party monitoring role
	whoBackup               // the backup job role
	whoASG                  // autoscaling.amazonaws.com
	whoScheduler            // EventBridge Scheduler role
	whoLegacy               // an old IAM user whose keys leak (anomalies only)
	whoAttacker             // an assumed role used for enumeration (anomalies only)
	numWho
)

// stream is one source of background calls.
type stream struct {
	api     *api
	who     who
	prof    profile
	rate    float64 // mean calls per minute (Poisson streams)
	period  int     // minutes between runs of a periodic job; 0 for Poisson
	offset  int     // minute of the first run after midnight
	perRun  int     // calls per run
	errRate float64 // share of calls failing in the background
	errCode string
	primary bool // only in the first region (global services)
	tag     string
}

// Templates use {tokens}; see appendTemplate.
var (
	apiDescribeInstances = &api{source: "ec2.amazonaws.com", name: "DescribeInstances", prefix: "ec2", readOnly: true, version: "1.09",
		params:   `{"instancesSet":{},"filterSet":{"items":[{"name":"instance-state-name","valueSet":{"items":[{"value":"running"}]}}]},"maxResults":1000}`,
		throttle: "RequestLimitExceeded", denied: "Client.UnauthorizedOperation"}
	apiDescribeVolumes = &api{source: "ec2.amazonaws.com", name: "DescribeVolumes", prefix: "ec2", readOnly: true, version: "1.09",
		params: `{"volumeSet":{},"filterSet":{}}`, throttle: "RequestLimitExceeded", denied: "Client.UnauthorizedOperation"}
	apiDescribeSecurityGroups = &api{source: "ec2.amazonaws.com", name: "DescribeSecurityGroups", prefix: "ec2", readOnly: true, version: "1.09",
		params: `{"securityGroupSet":{},"securityGroupIdSet":{"items":[{"groupId":"sg-0{hex16}"}]},"filterSet":{}}`, throttle: "RequestLimitExceeded", denied: "Client.UnauthorizedOperation"}
	apiDescribeSnapshots = &api{source: "ec2.amazonaws.com", name: "DescribeSnapshots", prefix: "ec2", readOnly: true, version: "1.09",
		params:   `{"snapshotSet":{},"ownersSet":{"items":[{"owner":"{acct}"}]},"sharedUsersSet":{},"filterSet":{"items":[{"name":"tag:backup","valueSet":{"items":[{"value":"hourly"}]}}]}}`,
		throttle: "RequestLimitExceeded", denied: "Client.UnauthorizedOperation"}
	apiCreateTags = &api{source: "ec2.amazonaws.com", name: "CreateTags", prefix: "ec2", version: "1.09",
		params:   `{"resourcesSet":{"items":[{"resourceId":"i-0{hex16}"}]},"tagSet":{"items":[{"key":"Name","value":"web-{n3}"},{"key":"team","value":"platform"}]}}`,
		resp:     `{"requestId":"{uuid}","_return":true}`,
		throttle: "RequestLimitExceeded", denied: "Client.UnauthorizedOperation"}
	apiRunInstances = &api{source: "ec2.amazonaws.com", name: "RunInstances", prefix: "ec2", version: "1.09",
		params:   `{"instancesSet":{"items":[{"minCount":1,"maxCount":1}]},"instanceType":"m6i.large","blockDeviceMapping":{},"monitoring":{"enabled":false},"disableApiTermination":false,"disableApiStop":false,"clientToken":"fleet-{uuid}","launchTemplate":{"launchTemplateId":"lt-0{hex16}","version":"7"}}`,
		resp:     `{"requestId":"{uuid}","reservationId":"r-0{hex16}","ownerId":"{acct}","groupSet":{},"instancesSet":{"items":[{"instanceId":"i-0{hex16}","imageId":"ami-0{hex16}","currentInstanceBootMode":"uefi","instanceState":{"code":0,"name":"pending"},"privateDnsName":"ip-10-0-{n2}-{n2}.{region}.compute.internal","amiLaunchIndex":0,"productCodes":{},"instanceType":"m6i.large","launchTime":1772409600000,"placement":{"availabilityZone":"{region}a","tenancy":"default"},"monitoring":{"state":"disabled"},"subnetId":"subnet-0{hex16}","vpcId":"vpc-0{hex16}","privateIpAddress":"10.0.{n2}.{n2}"}]}}`,
		throttle: "RequestLimitExceeded", denied: "Client.UnauthorizedOperation"}
	apiTerminateInstances = &api{source: "ec2.amazonaws.com", name: "TerminateInstances", prefix: "ec2", version: "1.09",
		params:   `{"instancesSet":{"items":[{"instanceId":"i-0{hex16}"}]}}`,
		resp:     `{"requestId":"{uuid}","instancesSet":{"items":[{"instanceId":"i-0{hex16}","currentState":{"code":32,"name":"shutting-down"},"previousState":{"code":16,"name":"running"}}]}}`,
		throttle: "RequestLimitExceeded", denied: "Client.UnauthorizedOperation"}
	apiCreateSnapshot = &api{source: "ec2.amazonaws.com", name: "CreateSnapshot", prefix: "ec2", version: "1.09",
		params:   `{"volumeId":"vol-0{hex16}","description":"hourly backup","tagSpecificationSet":{"items":[{"resourceType":"snapshot","tags":[{"key":"backup","value":"hourly"}]}]}}`,
		resp:     `{"requestId":"{uuid}","snapshotId":"snap-0{hex16}","volumeId":"vol-0{hex16}","status":"pending","startTime":1772409600000,"progress":"","ownerId":"{acct}","volumeSize":100,"encrypted":true,"storageTier":"standard"}`,
		throttle: "RequestLimitExceeded", denied: "Client.UnauthorizedOperation"}
	apiDeleteSnapshot = &api{source: "ec2.amazonaws.com", name: "DeleteSnapshot", prefix: "ec2", version: "1.09",
		params: `{"snapshotId":"snap-0{hex16}"}`, resp: `{"requestId":"{uuid}","_return":true}`,
		throttle: "RequestLimitExceeded", denied: "Client.UnauthorizedOperation"}
	apiAuthorizeSGIngress = &api{source: "ec2.amazonaws.com", name: "AuthorizeSecurityGroupIngress", prefix: "ec2", version: "1.09",
		params:   `{"groupId":"sg-0{hex16}","ipPermissions":{"items":[{"ipProtocol":"tcp","fromPort":443,"toPort":443,"groups":{},"ipRanges":{"items":[{"cidrIp":"10.{n2}.0.0/16"}]},"ipv6Ranges":{},"prefixListIds":{}}]}}`,
		resp:     `{"requestId":"{uuid}","_return":true,"securityGroupRuleSet":{"items":[{"groupOwnerId":"{acct}","groupId":"sg-0{hex16}","securityGroupRuleId":"sgr-0{hex16}","isEgress":false,"ipProtocol":"tcp","fromPort":443,"toPort":443,"cidrIpv4":"10.{n2}.0.0/16"}]}}`,
		throttle: "RequestLimitExceeded", denied: "Client.UnauthorizedOperation"}
	apiModifyInstanceAttribute = &api{source: "ec2.amazonaws.com", name: "ModifyInstanceAttribute", prefix: "ec2", version: "1.09",
		params: `{"instanceId":"i-0{hex16}","disableApiTermination":{"value":true}}`, resp: `{"requestId":"{uuid}","_return":true}`,
		throttle: "RequestLimitExceeded", denied: "Client.UnauthorizedOperation"}
	apiCreateNetworkInterface = &api{source: "ec2.amazonaws.com", name: "CreateNetworkInterface", prefix: "ec2", version: "1.09",
		params:   `{"subnetId":"subnet-0{hex16}","description":"AWS Lambda VPC ENI-orders-api-{hex8}","groupSet":{"items":[{"groupId":"sg-0{hex16}"}]},"privateIpAddressesSet":{}}`,
		resp:     `{"requestId":"{uuid}","networkInterface":{"networkInterfaceId":"eni-0{hex16}","subnetId":"subnet-0{hex16}","vpcId":"vpc-0{hex16}","availabilityZone":"{region}b","description":"AWS Lambda VPC ENI-orders-api","ownerId":"{acct}","requesterId":"AROA{upper16}:orders-api","requesterManaged":false,"status":"pending","privateIpAddress":"10.0.{n2}.{n2}","sourceDestCheck":true,"interfaceType":"lambda"}}`,
		throttle: "RequestLimitExceeded", denied: "Client.UnauthorizedOperation"}

	apiAssumeRole = &api{source: "sts.amazonaws.com", name: "AssumeRole", prefix: "sts", readOnly: true, version: "1.08",
		params:   `{"roleArn":"arn:aws:iam::{acct}:role/app-runtime","roleSessionName":"{hex16}","durationSeconds":3600}`,
		resp:     `{"credentials":{"accessKeyId":"ASIA{upper16}","sessionToken":"IQoJb3JpZ2luX2VjEMr//////////wEaCXVzLWVhc3QtMSJHMEUCIQ{hex16}","expiration":"Mar 2, 2026, 1:00:00 PM"},"assumedRoleUser":{"assumedRoleId":"AROA{upper16}:{hex16}","arn":"arn:aws:sts::{acct}:assumed-role/app-runtime/{hex16}"}}`,
		throttle: "Throttling", denied: "AccessDenied"}
	apiGetCallerIdentity = &api{source: "sts.amazonaws.com", name: "GetCallerIdentity", prefix: "sts", readOnly: true, version: "1.08",
		throttle: "Throttling", denied: "AccessDenied"}

	apiGetRole = &api{source: "iam.amazonaws.com", name: "GetRole", prefix: "iam", readOnly: true, version: "1.09",
		params: `{"roleName":"app-runtime"}`, throttle: "Throttling", denied: "AccessDenied"}
	apiListRoles = &api{source: "iam.amazonaws.com", name: "ListRoles", prefix: "iam", readOnly: true, version: "1.09",
		params: `{"maxItems":100}`, throttle: "Throttling", denied: "AccessDenied"}
	apiListUsers = &api{source: "iam.amazonaws.com", name: "ListUsers", prefix: "iam", readOnly: true, version: "1.09",
		throttle: "Throttling", denied: "AccessDenied"}
	apiGetRolePolicy = &api{source: "iam.amazonaws.com", name: "GetRolePolicy", prefix: "iam", readOnly: true, version: "1.09",
		params: `{"roleName":"app-runtime","policyName":"inline-s3-{n2}"}`, throttle: "Throttling", denied: "AccessDenied"}
	apiCreateUser = &api{source: "iam.amazonaws.com", name: "CreateUser", prefix: "iam", version: "1.09",
		params:   `{"userName":"svc-{hex8}","tags":[]}`,
		resp:     `{"user":{"path":"/","userName":"svc-{hex8}","userId":"AIDA{upper16}","arn":"arn:aws:iam::{acct}:user/svc-{hex8}","createDate":"Mar 2, 2026, 10:00:00 AM"}}`,
		throttle: "Throttling", denied: "AccessDenied"}
	apiCreateAccessKey = &api{source: "iam.amazonaws.com", name: "CreateAccessKey", prefix: "iam", version: "1.09",
		params:   `{"userName":"svc-{hex8}"}`,
		resp:     `{"accessKey":{"userName":"svc-{hex8}","accessKeyId":"AKIA{upper16}","status":"Active","createDate":"Mar 2, 2026, 10:00:00 AM"}}`,
		throttle: "Throttling", denied: "AccessDenied"}
	apiAttachRolePolicy = &api{source: "iam.amazonaws.com", name: "AttachRolePolicy", prefix: "iam", version: "1.09",
		params: `{"roleName":"app-runtime","policyArn":"arn:aws:iam::aws:policy/ReadOnlyAccess"}`, throttle: "Throttling", denied: "AccessDenied"}

	apiListBuckets = &api{source: "s3.amazonaws.com", name: "ListBuckets", prefix: "s3", readOnly: true, version: "1.09",
		params: `{"Host":"s3.{region}.amazonaws.com"}`, throttle: "SlowDown", denied: "AccessDenied"}
	apiGetBucketLocation = &api{source: "s3.amazonaws.com", name: "GetBucketLocation", prefix: "s3", readOnly: true, version: "1.09",
		params: `{"bucketName":"{bucket}","Host":"{bucket}.s3.{region}.amazonaws.com","location":""}`, throttle: "SlowDown", denied: "AccessDenied"}
	apiGetObject = &api{source: "s3.amazonaws.com", name: "GetObject", prefix: "s3", readOnly: true, data: true, version: "1.09",
		params: `{"bucketName":"{bucket}","Host":"{bucket}.s3.{region}.amazonaws.com","key":"events/2026/03/{n2}/part-{n3}.parquet"}`, throttle: "SlowDown", denied: "AccessDenied"}
	apiPutObject = &api{source: "s3.amazonaws.com", name: "PutObject", prefix: "s3", data: true, version: "1.09",
		params:   `{"bucketName":"{bucket}","Host":"{bucket}.s3.{region}.amazonaws.com","key":"uploads/{uuid}.json"}`,
		resp:     `{"x-amz-server-side-encryption":"aws:kms","x-amz-server-side-encryption-aws-kms-key-id":"arn:aws:kms:{region}:{acct}:key/{uuid}","x-amz-server-side-encryption-bucket-key-enabled":"true"}`,
		throttle: "SlowDown", denied: "AccessDenied"}

	apiDecrypt = &api{source: "kms.amazonaws.com", name: "Decrypt", prefix: "kms", readOnly: true, version: "1.08",
		params:   `{"encryptionAlgorithm":"SYMMETRIC_DEFAULT","encryptionContext":{"aws:lambda:FunctionArn":"arn:aws:lambda:{region}:{acct}:function:orders-api"}}`,
		throttle: "ThrottlingException", denied: "AccessDeniedException"}
	apiGenerateDataKey = &api{source: "kms.amazonaws.com", name: "GenerateDataKey", prefix: "kms", readOnly: true, version: "1.08",
		params:   `{"keyId":"arn:aws:kms:{region}:{acct}:key/{uuid}","keySpec":"AES_256","encryptionContext":{"aws:s3:arn":"arn:aws:s3:::{bucket}"}}`,
		throttle: "ThrottlingException", denied: "AccessDeniedException"}
	apiCreateGrant = &api{source: "kms.amazonaws.com", name: "CreateGrant", prefix: "kms", version: "1.08",
		params:   `{"keyId":"arn:aws:kms:{region}:{acct}:key/{uuid}","granteePrincipal":"ec2.{region}.amazonaws.com","operations":["Decrypt","Encrypt","GenerateDataKeyWithoutPlaintext","ReEncryptFrom","ReEncryptTo","CreateGrant","DescribeKey"],"constraints":{"encryptionContextSubset":{"aws:ebs:id":"vol-0{hex16}"}}}`,
		resp:     `{"grantId":"{hex16}{hex16}{hex16}{hex16}","keyId":"arn:aws:kms:{region}:{acct}:key/{uuid}"}`,
		throttle: "ThrottlingException", denied: "AccessDeniedException"}

	apiListFunctions = &api{source: "lambda.amazonaws.com", name: "ListFunctions20150331", prefix: "lambda", readOnly: true, version: "1.08",
		throttle: "TooManyRequestsException", denied: "AccessDeniedException"}
	apiGetFunction = &api{source: "lambda.amazonaws.com", name: "GetFunction20150331v2", prefix: "lambda", readOnly: true, version: "1.08",
		params: `{"functionName":"orders-api"}`, throttle: "TooManyRequestsException", denied: "AccessDeniedException"}
	apiUpdateFunctionCode = &api{source: "lambda.amazonaws.com", name: "UpdateFunctionCode20150331v2", prefix: "lambda", version: "1.08",
		params:   `{"functionName":"orders-api","s3Bucket":"{bucket}","s3Key":"builds/orders-api-{hex8}.zip","publish":true,"dryRun":false}`,
		resp:     `{"functionName":"orders-api","functionArn":"arn:aws:lambda:{region}:{acct}:function:orders-api","runtime":"python3.12","role":"arn:aws:iam::{acct}:role/orders-api-exec","handler":"app.handler","codeSize":1834211,"timeout":30,"memorySize":512,"version":"{n3}","state":"Pending","lastUpdateStatus":"InProgress"}`,
		throttle: "TooManyRequestsException", denied: "AccessDeniedException"}
	apiInvoke = &api{source: "lambda.amazonaws.com", name: "Invoke", prefix: "lambda", data: true, version: "1.09",
		params:   `{"functionName":"arn:aws:lambda:{region}:{acct}:function:orders-api","sourceArn":"arn:aws:execute-api:{region}:{acct}:{hex8}/prod/POST/orders"}`,
		throttle: "TooManyRequestsException", denied: "AccessDeniedException"}

	apiDescribeAlarms = &api{source: "monitoring.amazonaws.com", name: "DescribeAlarms", prefix: "cloudwatch", readOnly: true, version: "1.08",
		params: `{"maxRecords":100}`, throttle: "Throttling", denied: "AccessDenied"}
	apiPutMetricAlarm = &api{source: "monitoring.amazonaws.com", name: "PutMetricAlarm", prefix: "cloudwatch", version: "1.08",
		params:   `{"alarmName":"orders-api-5xx-{n2}","metricName":"5XXError","namespace":"AWS/ApiGateway","statistic":"Sum","period":60,"evaluationPeriods":5,"threshold":10.0,"comparisonOperator":"GreaterThanThreshold"}`,
		throttle: "Throttling", denied: "AccessDenied"}
	apiDescribeLogGroups = &api{source: "logs.amazonaws.com", name: "DescribeLogGroups", prefix: "logs", readOnly: true, version: "1.08",
		params: `{"logGroupNamePrefix":"/aws/lambda/"}`, throttle: "ThrottlingException", denied: "AccessDeniedException"}
	apiCreateLogStream = &api{source: "logs.amazonaws.com", name: "CreateLogStream", prefix: "logs", version: "1.08",
		params: `{"logGroupName":"/aws/lambda/orders-api","logStreamName":"2026/03/02/[$LATEST]{hex16}{hex16}"}`, throttle: "ThrottlingException", denied: "AccessDeniedException"}

	apiGetSecretValue = &api{source: "secretsmanager.amazonaws.com", name: "GetSecretValue", prefix: "secretsmanager", readOnly: true, version: "1.08",
		params: `{"secretId":"arn:aws:secretsmanager:{region}:{acct}:secret:prod/orders/db-{alnum6}"}`, throttle: "ThrottlingException", denied: "AccessDeniedException"}
	apiGetParameter = &api{source: "ssm.amazonaws.com", name: "GetParameter", prefix: "ssm", readOnly: true, version: "1.08",
		params: `{"name":"/prod/orders/feature-flags","withDecryption":true}`, throttle: "ThrottlingException", denied: "AccessDeniedException"}
	apiUpdateInstanceInformation = &api{source: "ssm.amazonaws.com", name: "UpdateInstanceInformation", prefix: "ssm", version: "1.08",
		params:   `{"instanceId":"i-0{hex16}","agentVersion":"3.3.1611.0","agentStatus":"Active","platformType":"Linux","platformName":"Amazon Linux","platformVersion":"2023","iPAddress":"10.0.{n2}.{n2}","computerName":"ip-10-0-{n2}-{n2}.ec2.internal","agentName":"amazon-ssm-agent"}`,
		throttle: "ThrottlingException", denied: "AccessDeniedException"}
	apiSendCommand = &api{source: "ssm.amazonaws.com", name: "SendCommand", prefix: "ssm", version: "1.08",
		params:   `{"instanceIds":["i-0{hex16}"],"documentName":"AWS-RunPatchBaseline","parameters":"HIDDEN_DUE_TO_SECURITY_REASONS","interactive":false}`,
		resp:     `{"command":{"commandId":"{uuid}","documentName":"AWS-RunPatchBaseline","documentVersion":"$DEFAULT","comment":"","parameters":"HIDDEN_DUE_TO_SECURITY_REASONS","instanceIds":["i-0{hex16}"],"targets":[],"status":"Pending","statusDetails":"Pending","targetCount":1,"completedCount":0,"errorCount":0,"deliveryTimedOutCount":0,"timeoutSeconds":3600,"interactive":false}}`,
		throttle: "ThrottlingException", denied: "AccessDeniedException"}

	apiDescribeTable = &api{source: "dynamodb.amazonaws.com", name: "DescribeTable", prefix: "dynamodb", readOnly: true, version: "1.08",
		params: `{"tableName":"orders"}`, throttle: "ThrottlingException", denied: "AccessDeniedException"}
	apiCreateBackup = &api{source: "dynamodb.amazonaws.com", name: "CreateBackup", prefix: "dynamodb", version: "1.08",
		params:   `{"tableName":"orders","backupName":"orders-{hex8}"}`,
		resp:     `{"backupDetails":{"backupArn":"arn:aws:dynamodb:{region}:{acct}:table/orders/backup/0{n3}{hex8}","backupName":"orders-{hex8}","backupSizeBytes":0,"backupStatus":"CREATING","backupType":"USER"}}`,
		throttle: "ThrottlingException", denied: "AccessDeniedException"}

	apiGetAuthorizationToken = &api{source: "ecr.amazonaws.com", name: "GetAuthorizationToken", prefix: "ecr", readOnly: true, version: "1.08",
		throttle: "ThrottlingException", denied: "AccessDeniedException"}
	apiUpdateService = &api{source: "ecs.amazonaws.com", name: "UpdateService", prefix: "ecs", version: "1.08",
		params:   `{"cluster":"prod","service":"orders-web","taskDefinition":"orders-web:{n3}","forceNewDeployment":false}`,
		resp:     `{"service":{"serviceArn":"arn:aws:ecs:{region}:{acct}:service/prod/orders-web","serviceName":"orders-web","clusterArn":"arn:aws:ecs:{region}:{acct}:cluster/prod","status":"ACTIVE","desiredCount":6,"runningCount":6,"pendingCount":0,"launchType":"FARGATE","taskDefinition":"arn:aws:ecs:{region}:{acct}:task-definition/orders-web:{n3}"}}`,
		throttle: "ThrottlingException", denied: "AccessDeniedException"}
	apiRunTask = &api{source: "ecs.amazonaws.com", name: "RunTask", prefix: "ecs", version: "1.08",
		params:   `{"cluster":"prod","taskDefinition":"reconcile-ledger:{n2}","count":1,"launchType":"FARGATE","startedBy":"chronos-schedule/reconcile","networkConfiguration":{"awsvpcConfiguration":{"subnets":["subnet-0{hex16}"],"assignPublicIp":"DISABLED"}}}`,
		resp:     `{"tasks":[{"taskArn":"arn:aws:ecs:{region}:{acct}:task/prod/{hex16}{hex16}","clusterArn":"arn:aws:ecs:{region}:{acct}:cluster/prod","lastStatus":"PROVISIONING","desiredStatus":"RUNNING","cpu":"512","memory":"1024","launchType":"FARGATE"}],"failures":[]}`,
		throttle: "ThrottlingException", denied: "AccessDeniedException"}
	apiDescribeASG = &api{source: "autoscaling.amazonaws.com", name: "DescribeAutoScalingGroups", prefix: "autoscaling", readOnly: true, version: "1.08",
		params: `{"autoScalingGroupNames":["prod-web-asg"]}`, throttle: "Throttling", denied: "AccessDenied"}
	apiDescribeTargetHealth = &api{source: "elasticloadbalancing.amazonaws.com", name: "DescribeTargetHealth", prefix: "elasticloadbalancing", readOnly: true, version: "1.08",
		params: `{"targetGroupArn":"arn:aws:elasticloadbalancing:{region}:{acct}:targetgroup/orders-web/{hex16}"}`, throttle: "Throttling", denied: "AccessDenied"}
	apiRegisterTargets = &api{source: "elasticloadbalancing.amazonaws.com", name: "RegisterTargets", prefix: "elasticloadbalancing", version: "1.08",
		params: `{"targetGroupArn":"arn:aws:elasticloadbalancing:{region}:{acct}:targetgroup/orders-web/{hex16}","targets":[{"id":"10.0.{n2}.{n2}","port":8080}]}`, throttle: "Throttling", denied: "AccessDenied"}
	apiCreateDBSnapshot = &api{source: "rds.amazonaws.com", name: "CreateDBSnapshot", prefix: "rds", version: "1.08",
		params:   `{"dBSnapshotIdentifier":"orders-db-{hex8}","dBInstanceIdentifier":"orders-db"}`,
		resp:     `{"dBSnapshotIdentifier":"orders-db-{hex8}","dBInstanceIdentifier":"orders-db","engine":"postgres","allocatedStorage":200,"status":"creating","port":5432,"availabilityZone":"{region}a","vpcId":"vpc-0{hex16}","masterUsername":"orders","engineVersion":"16.4","licenseModel":"postgresql-license","snapshotType":"manual","encrypted":true,"storageType":"gp3"}`,
		throttle: "Throttling", denied: "AccessDenied"}
	apiStartQueryExecution = &api{source: "athena.amazonaws.com", name: "StartQueryExecution", prefix: "athena", version: "1.08",
		params:   `{"queryString":"SELECT region, count(*) FROM orders WHERE day = '2026-03-{n2}' GROUP BY 1","clientRequestToken":"{uuid}","queryExecutionContext":{"database":"analytics"},"workGroup":"primary"}`,
		resp:     `{"queryExecutionId":"{uuid}"}`,
		throttle: "ThrottlingException", denied: "AccessDeniedException"}
	apiStartJobRun = &api{source: "glue.amazonaws.com", name: "StartJobRun", prefix: "glue", version: "1.08",
		params: `{"jobName":"orders-compaction"}`, resp: `{"jobRunId":"jr_{hex16}{hex16}"}`,
		throttle: "ThrottlingException", denied: "AccessDeniedException"}
	apiUpdateStack = &api{source: "cloudformation.amazonaws.com", name: "UpdateStack", prefix: "cloudformation", version: "1.08",
		params: `{"stackName":"orders-{n2}","templateURL":"https://{bucket}.s3.amazonaws.com/cfn/orders.yaml","capabilities":["CAPABILITY_IAM"]}`,
		resp:   `{"stackId":"arn:aws:cloudformation:{region}:{acct}:stack/orders/{uuid}"}`, throttle: "Throttling", denied: "AccessDenied"}
)

// catalog lists the background streams of an account. Order matters: it is
// the order of generation, and anomaly planning refers to streams by tag.
var catalog = []stream{
	// Read-only management calls: they feed error series only.
	{api: apiDescribeInstances, who: whoMonitor, prof: flat, rate: 1.2, tag: "busy-read limit"},
	{api: apiDescribeVolumes, who: whoMonitor, prof: flat, rate: 0.3},
	{api: apiDescribeSecurityGroups, who: whoAdmin, prof: office, rate: 0.15},
	{api: apiDescribeSnapshots, who: whoBackup, period: 15, offset: 7, perRun: 1},
	{api: apiAssumeRole, who: whoApp, prof: flat, rate: 0.6, primary: true},
	{api: apiGetCallerIdentity, who: whoDev, prof: office, rate: 0.2, primary: true},
	{api: apiGetRole, who: whoCI, prof: office, rate: 0.1, primary: true},
	{api: apiListRoles, who: whoAdmin, prof: office, rate: 0.02, primary: true},
	{api: apiListUsers, who: whoAdmin, prof: office, rate: 0.01, primary: true},
	{api: apiGetRolePolicy, who: whoCI, prof: office, rate: 0.03, errRate: 0.3, errCode: "NoSuchEntityException", primary: true},
	{api: apiListBuckets, who: whoAdmin, prof: office, rate: 0.05},
	{api: apiGetBucketLocation, who: whoApp, prof: flat, rate: 0.2},
	{api: apiDecrypt, who: whoLambda, prof: flat, rate: 1.5, tag: "limit"},
	{api: apiGenerateDataKey, who: whoApp, prof: flat, rate: 0.5},
	{api: apiListFunctions, who: whoDev, prof: office, rate: 0.03},
	{api: apiGetFunction, who: whoCI, prof: office, rate: 0.4, tag: "limit"},
	{api: apiDescribeAlarms, who: whoMonitor, prof: flat, rate: 0.3},
	{api: apiDescribeLogGroups, who: whoMonitor, prof: flat, rate: 0.2},
	{api: apiGetSecretValue, who: whoApp, prof: flat, rate: 0.5, errRate: 0.01, errCode: "ResourceNotFoundException", tag: "limit"},
	{api: apiGetParameter, who: whoLambda, prof: flat, rate: 0.7, errRate: 0.02, errCode: "ParameterNotFound", tag: "limit"},
	{api: apiDescribeTable, who: whoApp, prof: flat, rate: 0.3, tag: "limit"},
	{api: apiGetAuthorizationToken, who: whoApp, prof: flat, rate: 0.1},
	{api: apiDescribeASG, who: whoASG, prof: flat, rate: 0.2},
	{api: apiDescribeTargetHealth, who: whoMonitor, prof: flat, rate: 0.25},

	// Write management calls: the call-rate series.
	{api: apiUpdateInstanceInformation, who: whoSSM, prof: flat, rate: 1.5, tag: "steady busy-write"},
	{api: apiCreateTags, who: whoCI, prof: office, rate: 0.3, tag: "busy-write"},
	{api: apiRunInstances, who: whoASG, prof: office, rate: 0.03, tag: "long-burst"},
	{api: apiTerminateInstances, who: whoASG, prof: office, rate: 0.03},
	{api: apiCreateSnapshot, who: whoBackup, period: 60, offset: 5, perRun: 3, tag: "job"},
	{api: apiDeleteSnapshot, who: whoBackup, period: 1440, offset: 125, perRun: 6},
	{api: apiCreateNetworkInterface, who: whoLambda, prof: flat, rate: 0.08, tag: "long-burst"},
	{api: apiAuthorizeSGIngress, who: whoAdmin, prof: office, rate: 0.003, tag: "rare-write"},
	{api: apiModifyInstanceAttribute, who: whoAdmin, prof: office, rate: 0.005},
	{api: apiCreateUser, who: whoAdmin, prof: office, rate: 0.001, primary: true, tag: "rare-write"},
	{api: apiCreateAccessKey, who: whoAdmin, prof: office, rate: 0.002, primary: true, tag: "rare-write"},
	{api: apiAttachRolePolicy, who: whoCI, prof: office, rate: 0.005, primary: true},
	{api: apiCreateGrant, who: whoASG, prof: office, rate: 0.06},
	{api: apiUpdateFunctionCode, who: whoCI, prof: office, rate: 0.05},
	{api: apiPutMetricAlarm, who: whoCI, prof: office, rate: 0.01},
	{api: apiCreateLogStream, who: whoLambda, prof: flat, rate: 0.4, tag: "growth"},
	{api: apiSendCommand, who: whoDev, prof: office, rate: 0.04},
	{api: apiCreateBackup, who: whoBackup, period: 360, offset: 15, perRun: 1, tag: "job"},
	{api: apiUpdateService, who: whoCI, prof: office, rate: 0.5, tag: "deploy"},
	{api: apiRunTask, who: whoScheduler, period: 15, offset: 2, perRun: 2, tag: "job"},
	{api: apiRegisterTargets, who: whoASG, prof: office, rate: 0.04},
	{api: apiCreateDBSnapshot, who: whoBackup, period: 1440, offset: 180, perRun: 1},
	{api: apiStartQueryExecution, who: whoApp, prof: office, rate: 0.25, tag: "weekly"},
	{api: apiStartJobRun, who: whoScheduler, period: 360, offset: 30, perRun: 1},
	{api: apiUpdateStack, who: whoCI, prof: office, rate: 0.01},

	// Data events: never in a call-rate series.
	{api: apiGetObject, who: whoApp, prof: flat, rate: 1.2},
	{api: apiPutObject, who: whoApp, prof: office, rate: 0.8, tag: "data"},
	{api: apiInvoke, who: whoApp, prof: office, rate: 1.0},
}

// errorMessages gives the errorMessage for an error code; {arn}, {action}
// and {resource} are filled in. Codes not listed get no errorMessage.
var errorMessages = map[string]string{
	"AccessDenied":                 "User: {arn} is not authorized to perform: {action} on resource: {resource} because no identity-based policy allows the {action} action",
	"AccessDeniedException":        "User: {arn} is not authorized to perform: {action} on resource: {resource} because no identity-based policy allows the {action} action",
	"Client.UnauthorizedOperation": "You are not authorized to perform this operation. User: {arn} is not authorized to perform: {action} because no identity-based policy allows the {action} action",
	"RequestLimitExceeded":         "Request limit exceeded.",
	"ThrottlingException":          "Rate exceeded",
	"Throttling":                   "Rate exceeded",
	"TooManyRequestsException":     "Rate exceeded",
	"SlowDown":                     "Please reduce your request rate.",
	"NoSuchEntityException":        "The role policy with name inline-s3 cannot be found.",
	"ResourceNotFoundException":    "Secrets Manager can't find the specified secret.",
}

// User agents, as real SDKs and tools send them.
const (
	uaConsole   = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/133.0.0.0 Safari/537.36"
	uaCLI       = "aws-cli/2.24.5 md/awscrt#0.23.8 ua/2.1 os/macos#24.3.0 md/arch#arm64 lang/python#3.12.9 md/pyimpl#CPython exec-env/Terminal cfg/retry-mode#standard md/installer#source md/prompt#off md/command#{cmd}"
	uaTerraform = "APN/1.0 HashiCorp/1.0 Terraform/1.10.5 (+https://www.terraform.io) terraform-provider-aws/5.88.0 (+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go-v2/1.36.1 ua/2.1 os/linux lang/go#1.23.6 md/GOOS#linux md/GOARCH#amd64 api/{svc}#1.200.0"
	uaGoSDK     = "aws-sdk-go-v2/1.36.3 ua/2.1 os/linux lang/go#1.24.1 md/GOOS#linux md/GOARCH#amd64 api/{svc}#1.45.2 m/E"
	uaBoto3     = "Boto3/1.37.4 md/Botocore#1.37.4 ua/2.1 os/linux#5.10.234-245.910.amzn2.x86_64 md/arch#x86_64 lang/python#3.12.9 md/pyimpl#CPython exec-env/AWS_Lambda_python3.12 cfg/retry-mode#legacy Botocore/1.37.4"
	uaSSMAgent  = "aws-sdk-go/1.55.6 (go1.23.7; linux; amd64) amazon-ssm-agent/3.3.1611.0"
	uaDatadog   = "Datadog/1.0 Boto3/1.35.99 md/Botocore#1.35.99 ua/2.0 os/linux#5.15.0-1075-aws md/arch#x86_64 lang/python#3.11.11 md/pyimpl#CPython cfg/retry-mode#standard Botocore/1.35.99"
	uaLegacy    = "aws-sdk-java/1.12.261 Linux/4.14.352-267.564.amzn2.x86_64 OpenJDK_64-Bit_Server_VM/25.432-b06 java/1.8.0_432 vendor/Amazon.com_Inc. exec-env/AWS_ECS_EC2"
	uaPacu      = "aws-cli/1.16.0 Python/3.6.9 Linux/5.4.0-1103-aws botocore/1.12.0"
)
