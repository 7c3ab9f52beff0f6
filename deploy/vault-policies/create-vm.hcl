# Vault policy of the create-vm function's role (KV v2 mount `enclaive-static`; replace the mount
# name when VAULT_MOUNT differs). It writes new VM logins (check-and-set 0: never over an
# existing one), marks each with this deployment's id in its metadata (custom_metadata
# vm-api-deployment), and removes a login it made when the create fails halfway. It cannot read any
# login, and nothing under the clouds' credentials path (vm-api-clouds/).
path "enclaive-static/data/+/user/root" {
  capabilities = ["create"]
}
path "enclaive-static/data/+/vm/+/root" {
  capabilities = ["create"]
}
path "enclaive-static/metadata/+/user/root" {
  capabilities = ["update", "delete"]
}
path "enclaive-static/metadata/+/vm/+/root" {
  capabilities = ["update", "delete"]
}
