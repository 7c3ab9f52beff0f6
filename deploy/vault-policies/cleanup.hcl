# Vault policy of the cleanup function's role: it lists the mount's login paths and their
# metadata to find logins without a VM, removes them, and reads the clouds' credentials under
# vm-api-clouds/ to reconcile the clouds' VMs. It cannot read a login's content.
path "enclaive-static/metadata/" {
  capabilities = ["list"]
}
path "enclaive-static/metadata/+/" {
  capabilities = ["list"]
}
path "enclaive-static/metadata/+/user/" {
  capabilities = ["list"]
}
path "enclaive-static/metadata/+/vm/" {
  capabilities = ["list"]
}
path "enclaive-static/metadata/+/user/root" {
  capabilities = ["read", "delete"]
}
path "enclaive-static/metadata/+/vm/+/root" {
  capabilities = ["read", "delete"]
}
path "enclaive-static/data/vm-api-clouds/*" {
  capabilities = ["read"]
}
