# Installs the Fabrikam agent: its binary, its configuration, then its service, started; running it
# again brings an existing install back to this state instead of failing (New-Service refuses a
# service that exists, so an existing one is reconfigured through Win32_Service.Change).
# Logs: %ProgramData%\fleet-controller\logs\FabrikamAgent-install.log
$ErrorActionPreference = 'Stop'
$ServiceName = 'FabrikamAgent'
$LogFolder = Join-Path $env:ProgramData 'fleet-controller\logs'
$Log = Join-Path $LogFolder 'FabrikamAgent-install.log'
New-Item -ItemType Directory -Force -Path $LogFolder | Out-Null

function Write-Log([string]$Message) {
    Add-Content -LiteralPath $Log -Value ('{0} {1}' -f (Get-Date).ToString('u'), $Message) -Encoding UTF8
}

$programFolder = Join-Path $env:ProgramFiles 'Fabrikam'
$dataFolder = Join-Path $env:ProgramData 'Fabrikam'
$binary = Join-Path $programFolder 'FabrikamAgent.exe'
$config = Join-Path $dataFolder 'agent.json'
$commandLine = '"{0}" --config "{1}"' -f $binary, $config

$existing = Get-CimInstance -ClassName Win32_Service -Filter "Name='FabrikamAgent'"
if ($null -ne $existing -and $existing.State -ne 'Stopped') {
    Stop-Service -Name $ServiceName -Force
}
New-Item -ItemType Directory -Force -Path $programFolder | Out-Null
New-Item -ItemType Directory -Force -Path $dataFolder | Out-Null
Copy-Item -LiteralPath (Join-Path $PSScriptRoot 'FabrikamAgent.exe') -Destination $binary -Force
Copy-Item -LiteralPath (Join-Path $PSScriptRoot 'agent.json') -Destination $config -Force
if ($null -eq $existing) {
    New-Service -Name $ServiceName -DisplayName 'Fabrikam Agent' -BinaryPathName $commandLine -StartupType Automatic | Out-Null
    Write-Log "created the $ServiceName service: $commandLine"
} else {
    $changed = Invoke-CimMethod -InputObject $existing -MethodName Change -Arguments @{ PathName = $commandLine; StartMode = 'Automatic' }
    if ($changed.ReturnValue -ne 0) {
        Write-Log "Win32_Service.Change returned $($changed.ReturnValue)"
        exit [int]$changed.ReturnValue
    }
    Write-Log "reconfigured the existing $ServiceName service: $commandLine"
}
Start-Service -Name $ServiceName
Write-Log "$ServiceName is running"
exit 0
