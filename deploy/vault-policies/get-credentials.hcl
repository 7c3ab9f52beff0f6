# Vault policy of the get-credentials function's role: it reads VM logins and nothing else (no
# write, no delete, not the clouds' credentials under vm-api-clouds/).
path "enclaive-static/data/+/user/root" {
  capabilities = ["read"]
}
path "enclaive-static/data/+/vm/+/root" {
  capabilities = ["read"]
}
