# The Juniper-style MSP of engine/benches/msp.yaml.
#   data.roles[role][kind]          the actions the role grants on that kind
#   data.assignments[user][scope]   the roles the user holds at that scope ("msp:acme/org:o40")
#   input.principal                 the user id
#   input.resource                  {kind, scopes: the resource's scope and its ancestors}
package rolescope.msp

import rego.v1

default allow := false

roles_on(scopes) := {role |
	some scope in scopes
	some role in data.assignments[input.principal][scope]
}

allow if {
	some role in roles_on(input.resource.scopes)
	input.action in data.roles[role][input.resource.kind]
}

# every action the principal may take on input.resource
allowed_actions contains action if {
	some role in roles_on(input.resource.scopes)
	some action in data.roles[role][input.resource.kind]
}

# input.resources x input.actions: the [resource id, action] pairs allowed
batch contains [r.id, action] if {
	some r in input.resources
	some scope in r.scopes
	some role in data.assignments[input.principal][scope]
	some action in input.actions
	action in data.roles[role][r.kind]
}
