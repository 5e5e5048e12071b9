// Placeholder: replaced by the etcd provisioning setup.
export default function setup(): void {}
