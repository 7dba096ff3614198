package cli

// examples are the Examples: sections of help, by command path.
var examples = map[string]string{
	"berth": `  berth quickstart                      # deploy the bundled model on this machine and score it
  berth server &                        # a control plane on 127.0.0.1:8470
  berth service list -w team -o json`,
	"berth quickstart": `  berth quickstart
  berth quickstart --data-dir /tmp/berth-demo`,
	"berth server": `  berth server
  berth server --listen 0.0.0.0:8470 --data-dir /var/lib/berth
  berth server --database postgres://berth@db/berth`,
	"berth server reset-owner-token": `  berth server reset-owner-token
  berth server reset-owner-token --data-dir /var/lib/berth`,
	"berth version": `  berth version
  berth version -o json`,
	"berth versions": `  berth versions
  berth versions -l westus2 -w team`,
	"berth frontend": `  berth frontend --kubeconfig ~/.kube/config --namespace berth
  berth frontend --static routes.json --http :8080`,
	"berth model-server": `  berth model-server --model-dir ./models --listen 127.0.0.1:5001`,
	"berth model-init":   `  berth model-init --dest /var/azureml-app/models`,

	"berth workspace": `  berth workspace create team
  berth workspace list`,
	"berth workspace create": `  berth workspace create team
  berth workspace create -n team --region westus2`,
	"berth workspace show": `  berth workspace show team
  berth workspace show -w team`,
	"berth workspace list":   `  berth workspace list -o json`,
	"berth workspace delete": `  berth workspace delete team`,
	"berth workspace update": `  berth workspace update team --dns-zone ml.example.com --acme-email ops@example.com
  BERTH_WORKSPACE=team berth workspace update --no-dns01`,

	"berth compute": `  berth compute create local -n laptop -w team
  berth compute list -w team`,
	"berth compute create":       `  berth compute create local -n laptop -w team`,
	"berth compute create local": `  berth compute create local laptop -w team`,
	"berth compute create aks": `  berth compute create aks -n prod -w team --agent-count 3 --vm-size Standard_D3_v2
  berth compute create aks prod -w team --dry-run`,
	"berth compute attach": `  berth compute attach kubernetes -n dev --kubeconfig ~/.kube/config -w team`,
	"berth compute attach kubernetes": `  berth compute attach kubernetes -n dev --kubeconfig ~/.kube/config -w team
  berth compute attach kubernetes dev --kubeconfig kc.yaml --kube-context kind-dev --cluster-purpose DevTest --dry-run`,
	"berth compute attach aks": `  berth compute attach aks -n prod --resource-group ml --cluster-name prod-aks -w team`,
	"berth compute show":       `  berth compute show laptop -w team`,
	"berth compute list":       `  berth compute list -w team --query "[?health=='Healthy'].name"`,
	"berth compute wait":       `  berth compute wait prod -w team`,
	"berth compute update": `  berth compute update prod -w team --cluster-purpose DevTest
  berth compute update prod -w team --ssl-cert-file cert.pem --ssl-key-file key.pem --ssl-cname ml.example.com`,
	"berth compute scale":           `  berth compute scale prod -w team --node-count 5`,
	"berth compute delete":          `  berth compute delete laptop -w team`,
	"berth compute detach":          `  berth compute detach dev -w team`,
	"berth compute reconcile":       `  berth compute reconcile dev -w team`,
	"berth compute get-credentials": `  berth compute get-credentials prod -w team -f ~/.kube/prod.yaml`,
	"berth compute get-certificate": `  berth compute get-certificate laptop -w team > chain.pem`,

	"berth endpoint": `  berth endpoint create -n fraud --compute prod -w team
  berth endpoint version add -e fraud --version-name v1 --model fraud:1 --image scorer:1 -w team
  berth endpoint version add -e fraud --version-name v2 --model fraud:2 --image scorer:1 --traffic 10 -w team`,
	"berth endpoint create": `  berth endpoint create fraud --compute prod -w team
  berth endpoint create -n fraud --compute prod --auth token -w team`,
	"berth endpoint show":      `  berth endpoint show fraud -w team`,
	"berth endpoint list":      `  berth endpoint list -w team -o json`,
	"berth endpoint update":    `  berth endpoint update fraud --traffic v1=50,v2=40,v3=10 -w team`,
	"berth endpoint delete":    `  berth endpoint delete fraud -w team`,
	"berth endpoint keys":      `  berth endpoint keys fraud -w team`,
	"berth endpoint regen-key": `  berth endpoint regen-key fraud --key secondary -w team`,
	"berth endpoint token":     `  berth endpoint token fraud -w team`,
	"berth endpoint score": `  berth endpoint score fraud --data '{"data":[[1,2,3,4]]}' -w team
  berth endpoint score fraud --file req.json --version v2 -w team`,
	"berth endpoint logs-data": `  berth endpoint logs-data -e fraud --since 1h -w team
  berth endpoint logs-data fraud -o table -w team`,
	"berth endpoint version": `  berth endpoint version add -e fraud --version-name v2 --model fraud:2 --image scorer:1 --traffic 10 -w team
  berth endpoint version update -e fraud --version-name v2 --traffic 100 -w team`,
	"berth endpoint version add": `  berth endpoint version add -e fraud --version-name v1 --model fraud:1 --image scorer:1 -w team
  berth endpoint version add -e fraud --version-name v2 --model fraud:2 --image scorer:1 --traffic 10 -w team
  berth endpoint version add -e fraud --version-name shadow --model fraud:3 --image scorer:1 --traffic 0 --mirror-traffic 20 -w team`,
	"berth endpoint version update": `  berth endpoint version update -e fraud --version-name v2 --traffic 100 -w team   # promote v2
  berth endpoint version update -e fraud --version-name v2 --model fraud:3 -w team`,
	"berth endpoint version delete": `  berth endpoint version delete -e fraud --version-name v1 -w team`,

	"berth model": `  berth model register -n iris --path ./iris -w team
  berth model list -w team`,
	"berth model register": `  berth model register -n iris --path ./iris -w team
  berth model register -n iris --path model.onnx --tag framework=onnx --description "v2"`,
	"berth model list": `  berth model list -w team
  berth model list iris -w team`,
	"berth model show":     `  berth model show iris -w team --version 2`,
	"berth model download": `  berth model download iris -w team --version 1 -f iris-1.tar.gz`,
	"berth model delete":   `  berth model delete iris -w team --version 1`,

	"berth service": `  berth service deploy -n iris --compute laptop --model iris --command python3 --command serve.py -w team
  berth service score iris -w team --data '{"data":[[5.1,3.5,1.4,0.2]]}'`,
	"berth service deploy": `  berth service deploy -n iris --compute laptop --model iris:1 --replicas 1 -w team \
      --command python3 --command /srv/serve.py
  berth service deploy -n iris --compute prod --model iris --image registry.example.com/iris:1 --auth token -w team`,
	"berth service update": `  berth service update iris -w team --model iris:2
  berth service update iris -w team --autoscale-max 20`,
	"berth service show":   `  berth service show iris -w team`,
	"berth service list":   `  berth service list -w team -o tsv`,
	"berth service delete": `  berth service delete iris -w team`,
	"berth service wait":   `  berth service wait iris -w team`,
	"berth service score": `  berth service score iris -w team --data '{"data":[[5.1,3.5,1.4,0.2]]}'
  berth service score iris -w team -f request.json`,
	"berth service logs":      `  berth service logs iris -w team --tail 20`,
	"berth service keys":      `  berth service keys iris -w team --query primaryKey -o tsv`,
	"berth service regen-key": `  berth service regen-key iris -w team --key secondary`,
	"berth service token":     `  berth service token iris -w team --query accessToken -o tsv`,

	"berth operation": `  berth operation list -w team --state Running
  berth operation events --follow 8485fc40-4e03-4a47-804c-e9d683b6e2ff`,
	"berth operation list": `  berth operation list -w team
  berth operation list -w team --state Running`,
	"berth operation show":   `  berth operation show 8485fc40-4e03-4a47-804c-e9d683b6e2ff`,
	"berth operation events": `  berth operation events --follow 8485fc40-4e03-4a47-804c-e9d683b6e2ff`,
	"berth operation cancel": `  berth operation cancel 8485fc40-4e03-4a47-804c-e9d683b6e2ff`,

	"berth token": `  berth token create --role reader -w team
  berth token list`,
	"berth token create": `  berth token create --role contributor -w team --description "CI deploys"
  berth token create --role owner --all-workspaces`,
	"berth token list":   `  berth token list -o json`,
	"berth token revoke": `  berth token revoke tok-e18875d86275`,

	"berth help": `  berth help service deploy`,
	"berth completion": `  source <(berth completion bash)
  berth completion zsh > "${fpath[1]}/_berth"`,
	"berth completion bash":       `  source <(berth completion bash)`,
	"berth completion zsh":        `  berth completion zsh > "${fpath[1]}/_berth"`,
	"berth completion fish":       `  berth completion fish > ~/.config/fish/completions/berth.fish`,
	"berth completion powershell": `  berth completion powershell | Out-String | Invoke-Expression`,

	"berth config": `  berth config set-context prod --server https://berth.example.com --token "$TOKEN" --default-workspace team
  berth config use-context prod`,
	"berth config set-context":    `  berth config set-context prod --server https://berth.example.com --token "$TOKEN" --default-workspace team`,
	"berth config use-context":    `  berth config use-context prod`,
	"berth config get-contexts":   `  berth config get-contexts`,
	"berth config delete-context": `  berth config delete-context prod`,
}
