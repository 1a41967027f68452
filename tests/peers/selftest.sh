#!/usr/bin/env bash
# Self-test of the test peers: starts google-op, rogue-op and facebook on free
# loopback ports and exercises their main paths with curl (a full code flow with
# a cookie jar, PKCE, client auth, the Facebook appsecret_proof rule, every
# rogue-op mode). Needs node, curl, openssl and `npm ci` done in this directory.
#
# Usage: tests/peers/selftest.sh [-v]      (-v: print passing checks too)
# Last line: "N passed, M failed"; exit status 0 only when nothing failed.
# The whole run is bounded (timeout 180 s); every peer is stopped on exit.
set -uo pipefail

if [[ -z "${PEERS_SELFTEST_BOUNDED:-}" ]]; then
    PEERS_SELFTEST_BOUNDED=1 exec timeout -k 20 180 bash "$0" "$@"
fi

cd "$(dirname "$0")" || exit 2
VERBOSE=0
[[ "${1:-}" == "-v" ]] && VERBOSE=1

for tool in node curl openssl; do
    command -v "$tool" >/dev/null || { echo "selftest: $tool is needed" >&2; exit 2; }
done
if [[ ! -d node_modules/oidc-provider ]]; then
    echo "selftest: run 'npm ci' in $(pwd) first" >&2
    exit 2
fi

TMP=$(mktemp -d)
PIDS=()
declare -A PORT=() PID=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'echo "selftest: interrupted" >&2; exit 124' TERM INT

PASS=0
FAIL=0
ok() { PASS=$((PASS + 1)); ((VERBOSE)) && echo "ok   $1"; return 0; }
ko() { FAIL=$((FAIL + 1)); echo "FAIL $1${2:+ — $2}"; return 0; }
# expect DESCRIPTION ACTUAL EXPECTED
expect() { if [[ "$2" == "$3" ]]; then ok "$1"; else ko "$1" "got '${2:0:300}', want '$3'"; fi; }
# expect_match DESCRIPTION ACTUAL REGEX
expect_match() { if [[ "$2" =~ $3 ]]; then ok "$1"; else ko "$1" "got '${2:0:300}', want /$3/"; fi; }

CURL=(curl -sS --max-time 10)
RU=http://127.0.0.1:8080/.auth/login/google/callback
FB_RU=http://127.0.0.1:8080/.auth/login/facebook/callback

# ---- helpers -----------------------------------------------------------------------
# start_peer NAME SCRIPT ARGS... : starts `node SCRIPT --port 0 ARGS`, waits for its
# READY line and sets PORT[NAME] and PID[NAME].
start_peer() {
    local name=$1 script=$2 word port i
    shift 2
    node "$script" --port 0 "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" &
    PID[$name]=$!
    PIDS+=("$!")
    for ((i = 0; i < 100; i++)); do
        if [[ -s "$TMP/$name.out" ]] && read -r word port <"$TMP/$name.out" && [[ "$word" == READY ]]; then
            PORT[$name]=$port
            return 0
        fi
        sleep 0.1
    done
    echo "selftest: $name did not print READY; its stderr:" >&2
    cat "$TMP/$name.err" >&2
    exit 1
}

# jget PATH... < JSON : the values at the paths (like a.b.0), space-separated; strings
# raw, other values as JSON, "<undefined>" when absent, "<not json>" for bad input.
JS_GET='
function get(v, path) {
  for (const k of path.split(".").filter(Boolean)) v = v == null ? undefined : v[k];
  return v === undefined ? "<undefined>" : typeof v === "string" ? v : JSON.stringify(v);
}'
jget() {
    node -e "$JS_GET"'
let s = "";
process.stdin.on("data", (d) => { s += d; }).on("end", () => {
  let v;
  try { v = JSON.parse(s); } catch { process.stdout.write("<not json>"); return; }
  process.stdout.write(process.argv.slice(1).map((p) => get(v, p)).join(" "));
});' "$@"
}

# jwt TOKEN JWKS PATH... : like jget over {h: header, p: payload}, plus the paths
# "sig" (the signature checked against the JWKS key with the header's kid: ok | bad |
# nokey | unsupported; for HS256 the HMAC secret is that key's PEM), "siglen", and
# "dt.CLAIM" (the time claim minus now, in seconds, rounded to 10).
jwt() {
    node -e "$JS_GET"'
const crypto = require("node:crypto");
const [tok, jwksText, ...paths] = process.argv.slice(1);
const [h, p, s = ""] = tok.split(".");
let doc;
try {
  doc = { h: JSON.parse(Buffer.from(h, "base64url")), p: JSON.parse(Buffer.from(p, "base64url")) };
} catch { process.stdout.write("<not a jwt>"); process.exit(0); }
function verdict() {
  let jwks;
  try { jwks = JSON.parse(jwksText); } catch { return "<bad jwks>"; }
  const jwk = (jwks.keys || []).find((k) => k.kid === doc.h.kid);
  if (!jwk) return "nokey";
  const key = crypto.createPublicKey({ key: jwk, format: "jwk" });
  const data = Buffer.from(h + "." + p);
  const sig = Buffer.from(s, "base64url");
  const pss = { key, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 };
  switch (doc.h.alg) {
    case "RS256": return crypto.verify("sha256", data, key, sig) ? "ok" : "bad";
    case "RS512": return crypto.verify("sha512", data, key, sig) ? "ok" : "bad";
    case "PS256": return crypto.verify("sha256", data, pss, sig) ? "ok" : "bad";
    case "HS256": {
      const mac = crypto.createHmac("sha256", key.export({ type: "spki", format: "pem" })).update(data).digest();
      return mac.length === sig.length && crypto.timingSafeEqual(mac, sig) ? "ok" : "bad";
    }
    default: return "unsupported";
  }
}
const now = Date.now() / 1000;
function dt(claim) { // claim - now, in seconds, rounded to 10 s
  const v = doc.p[claim];
  return typeof v === "number" ? String(Math.round((v - now) / 10) * 10) : "<undefined>";
}
process.stdout.write(paths.map((q) => (q === "sig" ? verdict() : q === "siglen" ? String(s.length)
  : q.startsWith("dt.") ? dt(q.slice(3)) : get(doc, q))).join(" "));' "$@"
}

b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
new_verifier() { openssl rand 32 | b64url; }
challenge_of() { printf %s "$1" | openssl dgst -sha256 -binary | b64url; }
# query_param NAME URL
query_param() { sed -n "s/.*[?&]$1=\([^&#]*\).*/\1/p" <<<"$2"; }
hmac_hex() { printf %s "$2" | openssl dgst -sha256 -hmac "$1" | awk '{print $NF}'; }
# status_of CURL_ARGS... : the HTTP status only
status_of() { "${CURL[@]}" -o /dev/null -w '%{http_code}' "$@"; }

# ============================== google-op ==============================
echo "== google-op"
start_peer google google-op.mjs --client-id test-client --client-secret test-secret \
    --redirect-uri "$RU,http://127.0.0.1:8080/other" --extra-client mobile-client:mobile-secret \
    --hd-domain corp.example
G=http://127.0.0.1:${PORT[google]}

disc=$("${CURL[@]}" "$G/.well-known/openid-configuration")
expect "google: discovery issuer, PKCE methods, ID token algs" \
    "$(jget issuer code_challenge_methods_supported id_token_signing_alg_values_supported <<<"$disc")" \
    "$G [\"S256\"] [\"RS256\"]"
G_JWKS=$("${CURL[@]}" "$G/jwks")
expect "google: jwks kid/alg/use" "$(jget keys.0.kid keys.0.alg keys.0.use <<<"$G_JWKS")" "google-op-rs256 RS256 sig"

# google_authorize JAR HINT CLIENT VERIFIER NONCE [extra curl args] : follows the OP's
# redirects with the cookie jar until the callback; prints the callback URL.
google_authorize() {
    local jar=$1 hint=$2 client=$3 verifier=$4 nonce=$5 loc url i
    shift 5
    loc=$("${CURL[@]}" -o /dev/null -b "$jar" -c "$jar" -w '%{redirect_url}' -G "$G/auth" \
        --data-urlencode "client_id=$client" --data-urlencode response_type=code \
        --data-urlencode "scope=openid email profile" --data-urlencode state=st-123 \
        --data-urlencode "nonce=$nonce" --data-urlencode "redirect_uri=$RU" \
        --data-urlencode "code_challenge=$(challenge_of "$verifier")" \
        --data-urlencode code_challenge_method=S256 --data-urlencode "login_hint=$hint" "$@")
    for ((i = 0; i < 6; i++)); do # /auth -> /interaction/UID -> /auth/UID -> redirect_uri
        case "$loc" in "$RU"* | "") break ;; esac
        url=$loc
        loc=$("${CURL[@]}" -o /dev/null -b "$jar" -c "$jar" -w '%{redirect_url}' "$url")
    done
    printf '%s' "$loc"
}
# google_token CODE VERIFIER [client auth curl args...] : the token endpoint's JSON
google_token() {
    local code=$1 verifier=$2
    shift 2
    "${CURL[@]}" "$@" "$G/token" -d grant_type=authorization_code --data-urlencode "code=$code" \
        --data-urlencode "redirect_uri=$RU" --data-urlencode "code_verifier=$verifier"
}
# google_id_token JAR HINT [CLIENT SECRET] : a whole flow; prints the ID token
google_id_token() {
    local cb
    cb=$(google_authorize "$1" "$2" "${3:-test-client}" "$V" n)
    google_token "$(query_param code "$cb")" "$V" -u "${3:-test-client}:${4:-test-secret}" | jget id_token
}

V=$(new_verifier)
cb=$(google_authorize "$TMP/jar1" bob.smith@corp.example test-client "$V" nonce-1)
expect_match "google: flow reaches the callback" "$cb" "^$RU\\?code=[^&]+&state=st-123&iss="
expect "google: callback iss (RFC 9207)" "$(query_param iss "$cb")" "http%3A%2F%2F127.0.0.1%3A${PORT[google]}"
CODE=$(query_param code "$cb")
tok=$(google_token "$CODE" "$(new_verifier)" -u test-client:test-secret)
expect "google: wrong code_verifier refused" "$(jget error <<<"$tok")" invalid_grant
# oidc-provider quirk: a PKCE failure does NOT consume the code (rogue-op's does)
tok=$(google_token "$CODE" "$V" -u test-client:test-secret)
expect "google: code survives a PKCE failure (oidc-provider quirk)" "$(jget token_type <<<"$tok")" Bearer
tok=$(google_token "$CODE" "$V" -u test-client:test-secret)
expect "google: code is single use" "$(jget error <<<"$tok")" invalid_grant

cb=$(google_authorize "$TMP/jar2" bob.smith@corp.example test-client "$V" nonce-2)
tok=$(google_token "$(query_param code "$cb")" "$V" -u test-client:test-secret)
read -r IDT AT TT <<<"$(jget id_token access_token token_type <<<"$tok")"
expect "google: token_type" "$TT" Bearer
expect "google: ID token alg, kid, signature" "$(jwt "$IDT" "$G_JWKS" h.alg h.kid sig)" "RS256 google-op-rs256 ok"
expect "google: ID token iss aud azp nonce" "$(jwt "$IDT" "" p.iss p.aud p.azp p.nonce)" "$G test-client test-client nonce-2"
expect "google: ID token email email_verified hd" "$(jwt "$IDT" "" p.email p.email_verified p.hd)" \
    "bob.smith@corp.example true corp.example"
expect "google: ID token name" "$(jwt "$IDT" "" p.name)" "Bob Smith"
read -r BOB_SUB PICTURE <<<"$(jwt "$IDT" "" p.sub p.picture)"
expect_match "google: sub is a Google-like number" "$BOB_SUB" '^[0-9]{19}$'
expect_match "google: picture" "$PICTURE" "^$G/picture/[0-9]+\\.png$"
expect "google: picture is served" "$(status_of "$PICTURE")" 200
expect "google: userinfo" "$("${CURL[@]}" -H "Authorization: Bearer $AT" "$G/me" | jget sub email)" \
    "$BOB_SUB bob.smith@corp.example"

# same user again, fresh jar, client_secret_post: same sub
cb=$(google_authorize "$TMP/jar3" bob.smith@corp.example test-client "$V" nonce-3)
IDT=$(google_token "$(query_param code "$cb")" "$V" --data-urlencode client_id=test-client \
    --data-urlencode client_secret=test-secret | jget id_token)
expect "google: client_secret_post accepted; sub stable per email" "$(jwt "$IDT" "" p.aud p.sub)" "test-client $BOB_SUB"

IDT=$(google_id_token "$TMP/jar4" unverified.carol@example.com)
expect "google: email_verified false for 'unverified', no hd outside --hd-domain" \
    "$(jwt "$IDT" "" p.email_verified p.hd)" "false <undefined>"

# the same jar with another login_hint gets the other user (login_hint_mismatch check)
IDT=$(google_id_token "$TMP/jar2" dave@example.com)
expect "google: reused jar + new login_hint -> new user" "$(jwt "$IDT" "" p.email)" dave@example.com
cb=$(google_authorize "$TMP/jar2" dave@example.com test-client "$V" n6 --data-urlencode prompt=select_account)
IDT=$(google_token "$(query_param code "$cb")" "$V" -u test-client:test-secret | jget id_token)
expect "google: prompt=select_account resolves automatically" "$(jwt "$IDT" "" p.email)" dave@example.com

# the extra client (a mobile app's client id)
cb=$(google_authorize "$TMP/jar5" erin@example.com mobile-client "$V" n7)
tok=$(google_token "$(query_param code "$cb")" "$V" -u test-client:test-secret)
expect "google: code bound to its client" "$(jget error <<<"$tok")" invalid_grant
IDT=$(google_token "$(query_param code "$cb")" "$V" -u mobile-client:mobile-secret | jget id_token)
expect "google: --extra-client aud" "$(jwt "$IDT" "" p.aud p.azp)" "mobile-client mobile-client"
cb=$(google_authorize "$TMP/jar6" erin@example.com test-client "$V" n8)
tok=$(google_token "$(query_param code "$cb")" "$V" -u test-client:wrong-secret)
expect "google: wrong client secret" "$(jget error <<<"$tok")" invalid_client

# PKCE required, S256 only; unregistered redirect_uri
loc=$("${CURL[@]}" -o /dev/null -w '%{redirect_url}' -G "$G/auth" --data-urlencode client_id=test-client \
    --data-urlencode response_type=code --data-urlencode scope=openid --data-urlencode "redirect_uri=$RU" \
    --data-urlencode state=s)
expect_match "google: no code_challenge -> error" "$loc" "^$RU\\?error=invalid_request"
loc=$("${CURL[@]}" -o /dev/null -w '%{redirect_url}' -G "$G/auth" --data-urlencode client_id=test-client \
    --data-urlencode response_type=code --data-urlencode scope=openid --data-urlencode "redirect_uri=$RU" \
    --data-urlencode code_challenge=abcdefghijabcdefghijabcdefghijabcdefghijabc --data-urlencode code_challenge_method=plain)
expect_match "google: plain PKCE -> error" "$loc" "^$RU\\?error=invalid_request"
st=$(status_of -G "$G/auth" --data-urlencode client_id=test-client --data-urlencode response_type=code \
    --data-urlencode scope=openid --data-urlencode redirect_uri=http://127.0.0.1:8080/evil \
    --data-urlencode "code_challenge=$(challenge_of "$V")" --data-urlencode code_challenge_method=S256)
expect "google: unregistered redirect_uri -> 400" "$st" 400

# ============================== rogue-op ==============================
echo "== rogue-op"
start_peer rogue rogue-op.mjs --client-id rp --client-secret rp-secret --redirect-uri "$RU" \
    --extra-client rp2:rp2-secret --hd-domain corp.example
R=http://127.0.0.1:${PORT[rogue]}

disc=$("${CURL[@]}" "$R/.well-known/openid-configuration")
expect "rogue: discovery" "$(jget issuer authorization_endpoint token_endpoint jwks_uri userinfo_endpoint <<<"$disc")" \
    "$R $R/authorize $R/token $R/jwks $R/userinfo"
expect "rogue: discovery lists" "$(jget response_types_supported id_token_signing_alg_values_supported \
    code_challenge_methods_supported token_endpoint_auth_methods_supported <<<"$disc")" \
    '["code"] ["RS256"] ["S256"] ["client_secret_basic","client_secret_post"]'

# rogue_authorize VERIFIER NONCE [HINT] [CLIENT] : prints the callback URL
rogue_authorize() {
    "${CURL[@]}" -o /dev/null -w '%{redirect_url}' -G "$R/authorize" \
        --data-urlencode "client_id=${4:-rp}" --data-urlencode "redirect_uri=$RU" \
        --data-urlencode state=rs-1 --data-urlencode "nonce=$2" \
        --data-urlencode "code_challenge=$(challenge_of "$1")" --data-urlencode code_challenge_method=S256 \
        --data-urlencode response_type=code --data-urlencode "scope=openid email profile" \
        ${3:+--data-urlencode "login_hint=$3"}
}
# rogue_token CODE VERIFIER [curl args] : the token endpoint's answer
rogue_token() {
    local code=$1 verifier=$2
    shift 2
    "${CURL[@]}" "$@" "$R/token" -d grant_type=authorization_code --data-urlencode "code=$code" \
        --data-urlencode "redirect_uri=$RU" --data-urlencode "code_verifier=$verifier"
}
# rogue_id_token [HINT] : a complete flow (basic auth); prints the ID token
rogue_id_token() {
    local cb
    cb=$(rogue_authorize "$V" rogue-nonce "${1:-}")
    rogue_token "$(query_param code "$cb")" "$V" -u rp:rp-secret | jget id_token
}

cb=$(rogue_authorize "$V" rogue-nonce)
expect_match "rogue: authorize redirects with code, state, iss" "$cb" \
    "^$RU\\?code=[^&]+&state=rs-1&iss=http%3A%2F%2F127.0.0.1%3A${PORT[rogue]}$"
CODE=$(query_param code "$cb")
r=$("${CURL[@]}" -w ' %{http_code}' -u rp:wrong "$R/token" -d grant_type=authorization_code --data-urlencode "code=$CODE")
expect_match "rogue: wrong secret -> 401 invalid_client" "$r" '"error":"invalid_client".* 401$'
r=$(rogue_token "$CODE" "$(new_verifier)" -u rp:rp-secret)
expect "rogue: wrong code_verifier -> invalid_grant" "$(jget error <<<"$r")" invalid_grant
r=$(rogue_token "$CODE" "$V" -u rp:rp-secret)
expect "rogue: code is single use (even after a failure)" "$(jget error <<<"$r")" invalid_grant
cb=$(rogue_authorize "$V" rogue-nonce)
r=$("${CURL[@]}" -u rp:rp-secret "$R/token" -d grant_type=authorization_code \
    --data-urlencode "code=$(query_param code "$cb")" --data-urlencode redirect_uri=http://127.0.0.1:8080/x \
    --data-urlencode "code_verifier=$V")
expect "rogue: redirect_uri mismatch -> invalid_grant" "$(jget error <<<"$r")" invalid_grant
cb=$(rogue_authorize "$V" rogue-nonce)
r=$(rogue_token "$(query_param code "$cb")" "$V" --data-urlencode client_id=rp --data-urlencode client_secret=rp-secret)
read -r IDT AT TT <<<"$(jget id_token access_token token_type <<<"$r")"
expect "rogue: client_secret_post accepted" "$TT" Bearer
R_JWKS=$("${CURL[@]}" "$R/jwks")
expect "rogue: jwks" "$(jget keys.0.kid keys.0.alg keys.0.use keys.0.kty keys.1 <<<"$R_JWKS")" "k1 RS256 sig RSA <undefined>"
expect "rogue: good: alg, kid, signature" "$(jwt "$IDT" "$R_JWKS" h.alg h.kid sig)" "RS256 k1 ok"
expect "rogue: good: iss aud azp nonce" "$(jwt "$IDT" "" p.iss p.aud p.azp p.nonce)" "$R rp rp rogue-nonce"
expect "rogue: good: default user" "$(jwt "$IDT" "" p.email p.email_verified p.name)" "alice@example.com true Alice"
expect "rogue: good: iat = now, exp = now+300, no nbf" "$(jwt "$IDT" "" dt.iat dt.exp dt.nbf)" "0 300 <undefined>"
expect_match "rogue: good: auth_time = the first sign-in, seconds ago" "$(jwt "$IDT" "" dt.auth_time)" '^(0|-[1-9][0-9]?)$'
expect "rogue: userinfo" "$("${CURL[@]}" -H "Authorization: Bearer $AT" "$R/userinfo" | jget email)" alice@example.com
expect "rogue: userinfo refuses a bad token" "$(status_of -H "Authorization: Bearer nope" "$R/userinfo")" 401
IDT=$(rogue_id_token boss@corp.example)
expect "rogue: hd for --hd-domain" "$(jwt "$IDT" "" p.email p.hd)" "boss@corp.example corp.example"
cb=$(rogue_authorize "$V" n rp2@example.com rp2)
IDT=$(rogue_token "$(query_param code "$cb")" "$V" -u rp2:rp2-secret | jget id_token)
expect "rogue: --extra-client aud" "$(jwt "$IDT" "" p.aud)" rp2

# authorize refusals
au() { status_of -G "$R/authorize" --data-urlencode response_type=code --data-urlencode scope=openid "$@"; }
CH=$(challenge_of "$V")
expect "rogue: no code_challenge -> 400" "$(au --data-urlencode client_id=rp --data-urlencode "redirect_uri=$RU")" 400
expect "rogue: plain PKCE -> 400" "$(au --data-urlencode client_id=rp --data-urlencode "redirect_uri=$RU" \
    --data-urlencode "code_challenge=$CH" --data-urlencode code_challenge_method=plain)" 400
expect "rogue: unknown client -> 400" "$(au --data-urlencode client_id=nope --data-urlencode "redirect_uri=$RU" \
    --data-urlencode "code_challenge=$CH" --data-urlencode code_challenge_method=S256)" 400
expect "rogue: unknown redirect_uri -> 400" "$(au --data-urlencode client_id=rp --data-urlencode redirect_uri=http://x/ \
    --data-urlencode "code_challenge=$CH" --data-urlencode code_challenge_method=S256)" 400

mode() { "${CURL[@]}" -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' -d "{\"mode\":\"$1\"}" "$R/admin/mode"; }
expect "rogue: unknown mode refused" "$(mode bogus)" 400

# check_mode MODE WANT PATH... : sets MODE, runs a flow and checks the ID token's PATHs
# (see jwt(): h.*, p.*, sig against the current /jwks)
check_mode() {
    local m=$1 want=$2 idt
    shift 2
    expect "rogue[$m]: mode set" "$(mode "$m")" 200
    idt=$(rogue_id_token)
    expect "rogue[$m]: $*" "$(jwt "$idt" "$("${CURL[@]}" "$R/jwks")" "$@")" "$want"
}
check_mode bad_signature "RS256 k1 bad" h.alg h.kid sig
check_mode alg_none "none k1 0 unsupported" h.alg h.kid siglen sig
check_mode hs256_pubkey "HS256 k1 ok" h.alg h.kid sig
check_mode ps256 "PS256 k1 ok" h.alg h.kid sig
check_mode rs512 "RS512 k1 ok" h.alg h.kid sig
check_mode wrong_iss "RS256 k1 ok https://evil.example" h.alg h.kid sig p.iss
check_mode wrong_aud "ok other-client other-client" sig p.aud p.azp
check_mode multi_aud_no_azp 'ok ["rp","other"] <undefined>' sig p.aud p.azp
check_mode multi_aud_wrong_azp 'ok ["rp","other"] other' sig p.aud p.azp
check_mode wrong_nonce "ok" sig
expect_match "rogue[wrong_nonce]: nonce differs" "$(jwt "$(rogue_id_token)" "" p.nonce)" '^[A-Za-z0-9_-]{16}$'
check_mode expired "ok -600 -900" sig dt.exp dt.iat
check_mode nbf_future "ok 600 0 300" sig dt.nbf dt.iat dt.exp
check_mode iat_future "ok 600 300" sig dt.iat dt.exp
check_mode no_exp "ok <undefined>" sig p.exp
check_mode missing_email "ok <undefined> <undefined>" sig p.email p.email_verified
check_mode unverified_email "ok false" sig p.email_verified
check_mode hd_other "ok other.example" sig p.hd
check_mode unknown_kid "RS256 k-unknown nokey" h.alg h.kid sig
check_mode stale_auth_time "ok -3600" sig dt.auth_time
check_mode no_auth_time "ok <undefined>" sig p.auth_time
check_mode crit 'ok ["urn:example:must-understand"] true' sig h.crit h.urn:example:must-understand
check_mode crit_malformed "ok exp" sig h.crit
check_mode email_malformed "ok alice@example.com@evil.example" sig p.email
check_mode hd_malformed "ok 13" sig p.hd.length

expect "rogue[wrong_discovery_issuer]: mode set" "$(mode wrong_discovery_issuer)" 200
expect "rogue[wrong_discovery_issuer]: issuer" "$("${CURL[@]}" "$R/.well-known/openid-configuration" | jget issuer)" https://evil.example

mode html_token >/dev/null
cb=$(rogue_authorize "$V" n)
ct=$("${CURL[@]}" -o /dev/null -w '%{http_code} %{content_type}' -u rp:rp-secret "$R/token" -d grant_type=authorization_code \
    --data-urlencode "code=$(query_param code "$cb")" --data-urlencode "redirect_uri=$RU" --data-urlencode "code_verifier=$V")
expect_match "rogue[html_token]: 200 text/html" "$ct" '^200 text/html'
mode huge_token >/dev/null
cb=$(rogue_authorize "$V" n)
size=$("${CURL[@]}" -o /dev/null -w '%{http_code} %{size_download}' -u rp:rp-secret "$R/token" -d grant_type=authorization_code \
    --data-urlencode "code=$(query_param code "$cb")" --data-urlencode "redirect_uri=$RU" --data-urlencode "code_verifier=$V")
expect "rogue[huge_token]: 200 and 5 MiB" "$size" "200 $((5 * 1024 * 1024))"
mode hang_token >/dev/null
curl -s -o /dev/null --max-time 1 -u rp:rp-secret "$R/token" -d grant_type=authorization_code -d code=x
expect "rogue[hang_token]: no answer (curl timeout 28)" "$?" 28
mode hang_jwks >/dev/null
curl -s -o /dev/null --max-time 1 "$R/jwks"
expect "rogue[hang_jwks]: no answer (curl timeout 28)" "$?" 28

check_mode rotate "RS256 k2 ok" h.alg h.kid sig
expect "rogue[rotate]: only k2 published" "$("${CURL[@]}" "$R/jwks" | jget keys.0.kid keys.1)" "k2 <undefined>"
check_mode good "RS256 k2 ok" h.alg h.kid sig

expect_match "rogue: stats counted" "$("${CURL[@]}" "$R/admin/stats" | jget jwks_fetches token_calls authorize_calls)" \
    '^[1-9][0-9]* [1-9][0-9]* [1-9][0-9]*$'
"${CURL[@]}" -o /dev/null -X POST "$R/admin/reset"
expect "rogue: reset keeps keys, zeroes counters" \
    "$("${CURL[@]}" "$R/admin/stats" | jget kid mode jwks_fetches token_calls authorize_calls)" "k2 good 0 0 0"
"${CURL[@]}" -o /dev/null -H 'Content-Type: application/json' -d '{"keys": true}' "$R/admin/reset"
expect "rogue: reset keys:true -> fresh k1" "$(jwt "$(rogue_id_token)" "$("${CURL[@]}" "$R/jwks")" h.kid sig)" "k1 ok"

# an --issuer with a path: discovery below it
start_peer rogue2 rogue-op.mjs --issuer "http://127.0.0.1:1/tenant" --redirect-uri "$RU"
expect "rogue --issuer: discovery under the issuer path" \
    "$("${CURL[@]}" "http://127.0.0.1:${PORT[rogue2]}/tenant/.well-known/openid-configuration" | jget issuer)" "http://127.0.0.1:1/tenant"

# ============================== facebook ==============================
echo "== facebook"
APP_ID=424242
APP_SECRET=fb-app-secret
start_peer fb facebook.mjs --app-id "$APP_ID" --app-secret "$APP_SECRET" --redirect-uri "$FB_RU" \
    --persona '7001:Fiona Book:fiona@example.com' --persona '7002:Noemail Person:'
F=http://127.0.0.1:${PORT[fb]}/v19.0

# fb_dialog [curl args] : the dialog's redirect
fb_dialog() {
    "${CURL[@]}" -o /dev/null -w '%{redirect_url}' -G "$F/dialog/oauth" --data-urlencode "client_id=$APP_ID" \
        --data-urlencode "redirect_uri=$FB_RU" --data-urlencode state=fb-state \
        --data-urlencode response_type=code "$@"
}
# fb_exchange CODE [SECRET [REDIRECT_URI]] : oauth/access_token's answer
fb_exchange() {
    "${CURL[@]}" -G "$F/oauth/access_token" --data-urlencode "client_id=$APP_ID" \
        --data-urlencode "redirect_uri=${3:-$FB_RU}" --data-urlencode "client_secret=${2:-$APP_SECRET}" \
        --data-urlencode "code=$1"
}
me() { "${CURL[@]}" -G "$F/me" --data-urlencode fields=id,name,email,picture "$@"; }
# me_as TOKEN : /me with the right appsecret_proof
me_as() { me --data-urlencode "access_token=$1" --data-urlencode "appsecret_proof=$(hmac_hex "$APP_SECRET" "$1")"; }

cb=$(fb_dialog --data-urlencode scope=email,public_profile)
expect_match "fb: dialog -> code, state, #_=_" "$cb" "^$FB_RU\\?code=AQ[A-Za-z0-9]+&state=fb-state#_=_$"
CODE=$(query_param code "$cb")
expect "fb: wrong client_secret -> OAuthException 100" "$(fb_exchange "$CODE" wrong | jget error.type error.code)" "OAuthException 100"
expect "fb: status 400 for errors" "$(status_of -G "$F/oauth/access_token" --data-urlencode client_id=1)" 400
read -r FBT TT <<<"$(fb_exchange "$CODE" | jget access_token token_type)"
expect_match "fb: access token" "$FBT" '^EAA[A-Za-z0-9]+$'
expect "fb: token_type bearer" "$TT" bearer
expect "fb: code is single use" "$(fb_exchange "$CODE" | jget error.code error.error_subcode)" "100 36009"
CODE=$(query_param code "$(fb_dialog --data-urlencode scope=email)")
expect "fb: redirect_uri mismatch -> 100/36008" \
    "$(fb_exchange "$CODE" "$APP_SECRET" http://127.0.0.1:8080/other | jget error.code error.error_subcode)" "100 36008"
expect "fb: dialog refuses a wrong client_id" "$(status_of -G "$F/dialog/oauth" --data-urlencode client_id=1 \
    --data-urlencode "redirect_uri=$FB_RU")" 400
expect "fb: dialog refuses an unknown redirect_uri" "$(status_of -G "$F/dialog/oauth" --data-urlencode "client_id=$APP_ID" \
    --data-urlencode redirect_uri=http://127.0.0.1:8080/evil)" 400

REFUSAL="GraphMethodException 100 Invalid appsecret_proof provided in the API argument"
expect "fb: /me without appsecret_proof refused" \
    "$(me --data-urlencode "access_token=$FBT" | jget error.type error.code error.message)" "$REFUSAL"
expect "fb: /me with a wrong appsecret_proof refused" \
    "$(me --data-urlencode "access_token=$FBT" --data-urlencode "appsecret_proof=$(hmac_hex wrong "$FBT")" | jget error.type error.code error.message)" "$REFUSAL"
expect "fb: refusal status 400" "$(status_of -G "$F/me" --data-urlencode "access_token=$FBT")" 400
r=$(me_as "$FBT")
expect "fb: /me id, name, email" "$(jget id email name <<<"$r")" "7001 fiona@example.com Fiona Book"
expect_match "fb: /me picture" "$(jget picture.data.url <<<"$r")" "^http://127\\.0\\.0\\.1:${PORT[fb]}/picture/7001\\.png$"
r=$("${CURL[@]}" -G "$F/me" -H "Authorization: Bearer $FBT" --data-urlencode "appsecret_proof=$(hmac_hex "$APP_SECRET" "$FBT")")
expect "fb: token in the Authorization header" "$(jget id <<<"$r")" 7001
expect "fb: unknown token -> 190" "$(me_as EAAbogus | jget error.code)" 190

# persona without email; a dialog scope without email
T2=$(fb_exchange "$(query_param code "$(fb_dialog --data-urlencode scope=email --data-urlencode persona=7002)")" | jget access_token)
expect "fb: persona without email" "$(me_as "$T2" | jget id email)" "7002 <undefined>"
T3=$(fb_exchange "$(query_param code "$(fb_dialog --data-urlencode scope=public_profile)")" | jget access_token)
expect "fb: email not granted -> none" "$(me_as "$T3" | jget id email)" "7001 <undefined>"

# debug_token
dbg() { "${CURL[@]}" -G "$F/debug_token" --data-urlencode "input_token=$1" --data-urlencode "access_token=$2"; }
expect "fb: debug_token" "$(dbg "$FBT" "$APP_ID|$APP_SECRET" | jget data.app_id data.type data.is_valid data.user_id data.scopes)" \
    "$APP_ID USER true 7001 [\"public_profile\",\"email\"]"
expect "fb: debug_token refuses a wrong app token" "$(dbg "$FBT" "$APP_ID|wrong" | jget error.code error.type)" "190 OAuthException"
adm() { "${CURL[@]}" -H 'Content-Type: application/json' -d "$2" "http://127.0.0.1:${PORT[fb]}/admin/$1"; }
OT=$(adm token '{"persona":"7001","app_id":"999"}' | jget access_token)
expect "fb: token of another app -> its app_id" "$(dbg "$OT" "$APP_ID|$APP_SECRET" | jget data.app_id data.is_valid)" "999 true"
expect "fb: other app's token fails our appsecret_proof" "$(me_as "$OT" | jget error.code)" 100
ET=$(adm token '{"persona":"7001","expired":true}' | jget access_token)
expect "fb: expired token -> is_valid false" "$(dbg "$ET" "$APP_ID|$APP_SECRET" | jget data.is_valid)" false
expect "fb: expired token -> /me 190/463" "$(me_as "$ET" | jget error.code error.error_subcode)" "190 463"
MT=$(adm token '{"persona":"7002"}' | jget access_token)
expect "fb: admin token for the mobile flow" "$(dbg "$MT" "$APP_ID|$APP_SECRET" | jget data.user_id data.is_valid)" "7002 true"

# signed_request for the data-deletion callback
sr=$(adm signed-request '{"user_id":"7001"}' | jget signed_request)
expect "fb: signed_request HMAC" "$(cut -d. -f1 <<<"$sr")" \
    "$(printf %s "$(cut -d. -f2 <<<"$sr")" | openssl dgst -sha256 -hmac "$APP_SECRET" -binary | b64url)"

# modes
adm mode '{"mode":"deny"}' >/dev/null
expect_match "fb[deny]: user_denied" "$(fb_dialog --data-urlencode scope=email)" 'error=access_denied.*error_reason=user_denied&state=fb-state#_=_$'
adm mode '{"mode":"html"}' >/dev/null
expect_match "fb[html]: text/html" "$("${CURL[@]}" -o /dev/null -w '%{http_code} %{content_type}' "$F/oauth/access_token")" '^200 text/html'
adm mode '{"mode":"hang"}' >/dev/null
curl -s -o /dev/null --max-time 1 "$F/oauth/access_token"
expect "fb[hang]: no answer (curl timeout 28)" "$?" 28
adm mode '{"mode":"good"}' >/dev/null
expect_match "fb: stats: proof failures, endpoint counts" \
    "$("${CURL[@]}" "http://127.0.0.1:${PORT[fb]}/admin/stats" | jget proof_failures me_calls debug_token_calls dialog_calls access_token_calls)" \
    '^4 [1-9][0-9]* [1-9][0-9]* [1-9][0-9]* [1-9][0-9]*$'

# ============================== contract ==============================
echo "== contract"
for name in google rogue rogue2 fb; do
    expect "$name: stdout is exactly one READY line" "$(wc -l <"$TMP/$name.out") $(cut -d' ' -f1 "$TMP/$name.out")" "1 READY"
done
if command -v ss >/dev/null; then
    listening=$(ss -ltnpH 2>/dev/null | grep -E "pid=($(IFS='|'; echo "${PIDS[*]}"))," | awk '{print $4}' | sort -u | tr '\n' ' ')
    expect_match "peers listen on 127.0.0.1 only ($listening)" "$listening" '^(127\.0\.0\.1:[0-9]+ )+$'
fi
port=${PORT[rogue2]}
kill -TERM "${PID[rogue2]}"
wait "${PID[rogue2]}"
expect "SIGTERM: exit status 0" "$?" 0
expect "SIGTERM: port closed" "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$port/jwks")" 000

echo "$PASS passed, $FAIL failed"
((FAIL == 0))
