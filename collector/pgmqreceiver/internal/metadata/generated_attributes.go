// Code in the shape cmd/mdatagen generates from metadata.yaml, written by
// hand (the generator is not available to this project).

package metadata

// AttributeMessagingSystem specifies the value of the messaging.system attribute.
type AttributeMessagingSystem int

const (
	_ AttributeMessagingSystem = iota
	// AttributeMessagingSystemPgmq is messaging.system "pgmq".
	AttributeMessagingSystemPgmq
)

// String returns the string representation of the AttributeMessagingSystem.
func (av AttributeMessagingSystem) String() string {
	switch av {
	case AttributeMessagingSystemPgmq:
		return "pgmq"
	}
	return ""
}

// MapAttributeMessagingSystem is a helper map of string to AttributeMessagingSystem attribute value.
var MapAttributeMessagingSystem = map[string]AttributeMessagingSystem{
	"pgmq": AttributeMessagingSystemPgmq,
}

// AttributePgmqMessageState specifies the value of the pgmq.message.state attribute.
type AttributePgmqMessageState int

const (
	_ AttributePgmqMessageState = iota
	// AttributePgmqMessageStateVisible is pgmq.message.state "visible".
	AttributePgmqMessageStateVisible
	// AttributePgmqMessageStateInvisible is pgmq.message.state "invisible".
	AttributePgmqMessageStateInvisible
)

// String returns the string representation of the AttributePgmqMessageState.
func (av AttributePgmqMessageState) String() string {
	switch av {
	case AttributePgmqMessageStateVisible:
		return "visible"
	case AttributePgmqMessageStateInvisible:
		return "invisible"
	}
	return ""
}

// MapAttributePgmqMessageState is a helper map of string to AttributePgmqMessageState attribute value.
var MapAttributePgmqMessageState = map[string]AttributePgmqMessageState{
	"visible":   AttributePgmqMessageStateVisible,
	"invisible": AttributePgmqMessageStateInvisible,
}

// AttributePgmqDepthMethod specifies the value of the pgmq.depth.method attribute.
type AttributePgmqDepthMethod int

const (
	_ AttributePgmqDepthMethod = iota
	// AttributePgmqDepthMethodCount is pgmq.depth.method "count".
	AttributePgmqDepthMethodCount
	// AttributePgmqDepthMethodEstimate is pgmq.depth.method "estimate".
	AttributePgmqDepthMethodEstimate
)

// String returns the string representation of the AttributePgmqDepthMethod.
func (av AttributePgmqDepthMethod) String() string {
	switch av {
	case AttributePgmqDepthMethodCount:
		return "count"
	case AttributePgmqDepthMethodEstimate:
		return "estimate"
	}
	return ""
}

// MapAttributePgmqDepthMethod is a helper map of string to AttributePgmqDepthMethod attribute value.
var MapAttributePgmqDepthMethod = map[string]AttributePgmqDepthMethod{
	"count":    AttributePgmqDepthMethodCount,
	"estimate": AttributePgmqDepthMethodEstimate,
}
