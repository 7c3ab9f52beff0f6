# Vault policy of the provisioner function's role: it reads VM logins (their public parts go
# into cloud-init), removes a VM's own login with the VM, and reads the clouds' credentials
# (the Azure service principal, the Kraud.Cloud token) under vm-api-clouds/.
path "enclaive-static/data/+/user/root" {
  capabilities = ["read"]
}
path "enclaive-static/data/+/vm/+/root" {
  capabilities = ["read"]
}
path "enclaive-static/metadata/+/user/root" {
  capabilities = ["delete"]
}
path "enclaive-static/metadata/+/vm/+/root" {
  capabilities = ["delete"]
}
path "enclaive-static/data/vm-api-clouds/*" {
  capabilities = ["read"]
}
