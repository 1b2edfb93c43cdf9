# Removes the Fabrikam agent's service and configuration.
$ErrorActionPreference = 'Stop'
if (Get-Service -Name FabrikamAgent -ErrorAction SilentlyContinue) {
    Stop-Service -Name FabrikamAgent -Force
    & sc.exe delete FabrikamAgent | Out-Null
}
Remove-Item -LiteralPath (Join-Path $env:ProgramData 'Fabrikam') -Recurse -Force -ErrorAction SilentlyContinue
exit 0
