# Registers the Fabrikam agent service with its configuration file.
param([Parameter(Mandatory = $true)][string]$ConfigPath)
$ErrorActionPreference = 'Stop'
$binary = Join-Path $env:ProgramFiles 'Fabrikam\agent.exe'
New-Service -Name FabrikamAgent -BinaryPathName "`"$binary`" --config `"$ConfigPath`"" -StartupType Automatic | Out-Null
Start-Service -Name FabrikamAgent
