# Installs the Fabrikam agent: its configuration, then its service.
$ErrorActionPreference = 'Stop'
$target = Join-Path $env:ProgramData 'Fabrikam'
New-Item -ItemType Directory -Force -Path $target | Out-Null
Copy-Item -LiteralPath (Join-Path $PSScriptRoot 'agent.json') -Destination $target -Force
& (Join-Path $PSScriptRoot 'register-service.ps1') -ConfigPath (Join-Path $target 'agent.json')
exit $LASTEXITCODE
