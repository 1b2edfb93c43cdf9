# Removes the Fabrikam agent's service, binary and configuration; running it again changes nothing.
# Logs: %ProgramData%\fleet-controller\logs\FabrikamAgent-uninstall.log
$ErrorActionPreference = 'Stop'
$ServiceName = 'FabrikamAgent'
$LogFolder = Join-Path $env:ProgramData 'fleet-controller\logs'
$Log = Join-Path $LogFolder 'FabrikamAgent-uninstall.log'
New-Item -ItemType Directory -Force -Path $LogFolder | Out-Null

function Write-Log([string]$Message) {
    Add-Content -LiteralPath $Log -Value ('{0} {1}' -f (Get-Date).ToString('u'), $Message) -Encoding UTF8
}

$existing = Get-CimInstance -ClassName Win32_Service -Filter "Name='FabrikamAgent'"
if ($null -ne $existing) {
    if ($existing.State -ne 'Stopped') {
        Stop-Service -Name $ServiceName -Force
    }
    $deleted = Invoke-CimMethod -InputObject $existing -MethodName Delete
    if ($deleted.ReturnValue -ne 0) {
        Write-Log "Win32_Service.Delete returned $($deleted.ReturnValue)"
        exit [int]$deleted.ReturnValue
    }
    Write-Log "deleted the $ServiceName service"
}
foreach ($folder in @((Join-Path $env:ProgramFiles 'Fabrikam'), (Join-Path $env:ProgramData 'Fabrikam'))) {
    if ([System.IO.Directory]::Exists($folder)) {
        Remove-Item -LiteralPath $folder -Recurse -Force
        Write-Log "removed $folder"
    }
}
exit 0
