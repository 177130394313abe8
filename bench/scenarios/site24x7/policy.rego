# policies/site24x7-msp, the Operator on maintenance windows.
#   data.roles[role] = {"web_client_only": bool, "grants": [{"kinds", "actions", "when"?}]}
#   data.assignments[user][scope] = roles held there ("msp:zylker/customer:c1")
#   input = {principal: {id}, action, resource: {kind, scopes, attributes}, context: {channel}}
package rolescope.site24x7

import rego.v1

default allow := false

allow if {
	some scope in input.resource.scopes
	some role in data.assignments[input.principal.id][scope]
	channel_ok(data.roles[role])
	some grant in data.roles[role].grants
	input.resource.kind in grant.kinds
	input.action in grant.actions
	condition_holds(grant)
}

channel_ok(role) if not role.web_client_only

channel_ok(role) if {
	role.web_client_only
	input.context.channel == "web_client"
}

condition_holds(grant) if not grant.when

# resource.created_by == principal.id and not resource.modified_by_super_admin
condition_holds(grant) if {
	grant.when == "own_unmodified"
	input.resource.attributes.created_by == input.principal.id
	not input.resource.attributes.modified_by_super_admin
}
