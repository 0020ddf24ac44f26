#!/bin/sh
# An agent that answers and exits within milliseconds: one valid result line, no stdin read.
printf '%s\n' '{"type":"result","subtype":"success","is_error":false,"duration_ms":1,"num_turns":1,"result":"fast","session_id":"00000000-0000-4000-8000-000000000000","total_cost_usd":0.001,"permission_denials":[]}'
